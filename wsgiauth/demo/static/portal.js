/*
 * The demo portal's page script: sign-in buttons, the signed-in identity, a call to the
 * portal's protected API with the identity token, and sign-out. Everything from the
 * server is put on the page with textContent, never as HTML.
 */
'use strict';

(function () {
  // The last proxy provider used (e.g. guest), so a reload signs in with it again. Only
  // the provider id is kept: tokens stay in memory.
  const REMEMBER_KEY = 'wsgiauth-demo.provider';

  const $ = (id) => document.getElementById(id);
  const ui = {
    error: $('error'),
    status: $('status'),
    signin: $('signin'),
    buttons: $('buttons'),
    noProviders: $('no-providers'),
    profile: $('profile'),
    avatar: $('avatar'),
    name: $('name'),
    email: $('email'),
    ref: $('ref'),
    groups: $('groups'),
    sessionInfo: $('session-info'),
    call: $('call'),
    signout: $('signout'),
    api: $('api'),
    apiStatus: $('api-status'),
    apiBody: $('api-body'),
  };

  function showError(error) {
    const name = error && error.name ? error.name : 'Error';
    const message = error && error.message ? error.message : String(error);
    ui.error.textContent = `${name}: ${message}`;
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.hidden = true;
    ui.error.textContent = '';
  }

  function remember(providerId) {
    try {
      if (providerId) localStorage.setItem(REMEMBER_KEY, providerId);
      else localStorage.removeItem(REMEMBER_KEY);
    } catch (_) {
      // Storage may be disabled; remembering is a convenience only.
    }
  }

  function remembered() {
    try {
      return localStorage.getItem(REMEMBER_KEY);
    } catch (_) {
      return null;
    }
  }

  function chip(text, className) {
    const element = document.createElement('span');
    element.className = className ? `chip ${className}` : 'chip';
    element.textContent = text;
    return element;
  }

  function render(session, titles) {
    ui.status.hidden = true;
    ui.signin.hidden = Boolean(session);
    ui.profile.hidden = !session;
    if (!session) {
      ui.api.hidden = true;
      return;
    }
    const identity = session.backstageIdentity.identity || {};
    const ref = identity.userEntityRef || '';
    const profile = session.profile || {};
    const name = profile.displayName || ref.split('/').pop() || ref;
    ui.name.textContent = name;
    ui.email.textContent = profile.email || '';
    ui.email.hidden = !profile.email;
    ui.avatar.replaceChildren();
    if (typeof profile.picture === 'string' && profile.picture.startsWith('https://')) {
      const img = document.createElement('img');
      img.alt = '';
      img.src = profile.picture;
      ui.avatar.append(img);
    } else {
      ui.avatar.textContent = name.charAt(0).toUpperCase();
    }
    ui.ref.textContent = ref;
    ui.groups.replaceChildren(
      ...(identity.ownershipEntityRefs || []).map((owner) =>
        chip(owner, owner === ref ? 'user' : '')),
    );
    const until = new Date(session.expiresAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    ui.sessionInfo.textContent = `Signed in with ${titles.get(session.provider) || session.provider}; the token is renewed before ${until}`;
  }

  async function main() {
    if (typeof window.WsgiAuth !== 'function') {
      showError(new Error('The wsgiauth client did not load: is the auth backend running?'));
      ui.status.hidden = true;
      return;
    }
    let config;
    try {
      const response = await fetch('api/providers', { headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(`GET api/providers: ${response.status} ${response.statusText}`);
      config = await response.json();
    } catch (error) {
      showError(error);
      ui.status.hidden = true;
      return;
    }

    const auth = new WsgiAuth({ baseUrl: config.authBaseUrl, environment: config.environment });
    const titles = new Map();
    for (const entry of config.providers) {
      // Titles and default scopes: wsgiauth.js knows Backstage's for each provider id.
      const provider = auth.provider(entry.id, { proxy: entry.kind === 'proxy' });
      titles.set(entry.id, provider.title);
      const button = document.createElement('button');
      button.type = 'button';
      button.className = entry.kind === 'oauth' ? 'primary' : '';
      button.textContent = entry.id === 'guest' ? 'Sign in as guest' : `Sign in with ${provider.title}`;
      button.addEventListener('click', async () => {
        clearError();
        // signIn() opens the popup before its first await, inside this click.
        const signingIn = provider.signIn();
        button.disabled = true;
        try {
          await signingIn;
          remember(provider.proxy ? provider.id : null);
        } catch (error) {
          showError(error);
        } finally {
          button.disabled = false;
        }
      });
      ui.buttons.append(button);
    }
    ui.noProviders.hidden = config.providers.length > 0;

    auth.onChange((session) => render(session, titles));

    ui.call.addEventListener('click', async () => {
      clearError();
      try {
        const response = await auth.fetch('api/me', { headers: { Accept: 'application/json' } });
        const text = await response.text();
        let shown = text;
        try {
          shown = JSON.stringify(JSON.parse(text), null, 2);
        } catch (_) {
          // not JSON: show it as it came
        }
        ui.apiStatus.textContent = `${response.status} ${response.statusText}`;
        ui.apiStatus.className = response.ok ? 'badge ok' : 'badge bad';
        ui.apiBody.textContent = shown;
        ui.api.hidden = false;
      } catch (error) {
        showError(error);
      }
    });

    ui.signout.addEventListener('click', async () => {
      clearError();
      const session = auth.session;
      remember(null);
      try {
        if (session) await auth.provider(session.provider).signOut();
      } catch (error) {
        showError(error);
      }
    });

    // Silent sign-in: OAuth providers through their refresh cookie; a proxy provider
    // (which needs no cookie) only if it was the one used last.
    const ids = config.providers.filter((entry) => entry.kind === 'oauth').map((entry) => entry.id);
    const last = remembered();
    if (last && titles.has(last) && !ids.includes(last)) ids.push(last);
    try {
      await auth.restore(ids);
    } catch (error) {
      showError(error); // a failed redirect sign-in, reported on the URL
      await auth.restore(ids).catch(showError);
    }
    render(auth.session, titles);
  }

  main();
})();
