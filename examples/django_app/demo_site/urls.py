"""The example's views: a page, ``/private`` (``login_required``) and ``/api/me`` (PROTECTED)."""

from __future__ import annotations

from django.http import HttpResponse
from django.http import JsonResponse
from django.urls import path
from django_wsgiauth import login_required

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>wsgiauth: Django</title>
<script src="/api/auth/.client/wsgiauth.js"></script>
<button id="sign-in">Sign in as guest</button>
<pre id="out">Not signed in.</pre>
<script>
  const auth = new WsgiAuth({ baseUrl: '/api/auth' });
  const guest = auth.provider('guest', { proxy: true });
  document.getElementById('sign-in').onclick = async () => {
    await guest.signIn();
    const response = await auth.fetch('/private');
    document.getElementById('out').textContent = await response.text();
  };
</script>
"""


def home(request):
    return HttpResponse(PAGE)


@login_required
def private(request):
    identity = request.wsgiauth_identity
    return JsonResponse(
        {"user": identity.user_entity_ref, "ownership": list(identity.ownership_entity_refs)}
    )


def me(request):
    # Under WSGIAUTH["PROTECTED"]: the middleware has already refused callers without a token.
    return JsonResponse({"username": request.user.username})


urlpatterns = [
    path("", home),
    path("private", private),
    path("api/me", me),
]
