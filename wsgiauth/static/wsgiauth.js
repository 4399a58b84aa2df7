/*
 * wsgiauth.js: the browser side of wsgiauth's Backstage-compatible sign-in.
 *
 * A classic script (no build step, no dependency) that defines `window.WsgiAuth`.
 * It speaks the same wire as Backstage's DefaultAuthConnector and
 * ProxiedSignInIdentity, so it works against wsgiauth or a Backstage backend:
 *
 *   const auth = new WsgiAuth({ baseUrl: '/api/auth' });
 *   const github = auth.provider('github');   // Backstage's title and default scopes
 *   const oidc = auth.provider('oidc', { title: 'Corporate SSO' });
 *   const guest = auth.provider('guest');     // a proxy provider: refresh only
 *   await auth.restore(['oidc']);          // on page load: silent sign-in
 *   await oidc.signIn();                   // on a click: popup, or redirect when blocked
 *   const res = await auth.fetch('/api/me'); // Authorization: Bearer <identity token>
 *
 * `auth.fetch` attaches the token only to the page's origin, the origin of `baseUrl` and
 * the exact origins of the `tokenOrigins` option, e.g.
 * `new WsgiAuth({ baseUrl: '/api/auth', tokenOrigins: ['https://api.example.com'] })`;
 * a URL on any other origin is fetched without it.
 *
 * Sessions live in memory only; nothing is written to localStorage or cookies
 * by this script (the refresh-token cookie is the server's, HttpOnly).
 */
(function (global) {
  'use strict';

  const POPUP_POLL_MS = 100; // the callback page closes itself 100 ms after posting
  const PROXY_MARGIN_MS = 5 * 60 * 1000; // Backstage's ProxiedSignInIdentity margin

  /** An error with the server's name and message (and HTTP status, when there was one). */
  class WsgiAuthError extends Error {
    constructor(name, message, status) {
      super(message == null ? '' : String(message));
      this.name = name ? String(name) : 'Error';
      if (status !== undefined) this.status = status;
    }
  }

  /** Scopes as an array of unique names; accepts arrays or 'a b,c|d' strings. */
  function splitScopes(scopes) {
    if (scopes == null) return [];
    const parts = Array.isArray(scopes) ? scopes.flatMap(splitScopes) : String(scopes).split(/[\s|,]/);
    return [...new Set(parts.filter(Boolean))];
  }

  function hasScopes(session, scopes) {
    const granted = new Set(session.scopes);
    return scopes.every((scope) => granted.has(scope));
  }

  /** The `exp` claim of a JWT in ms, read without verification (the server verifies). */
  function tokenExpiry(token) {
    try {
      const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(atob(payload));
      return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
    } catch (_) {
      return undefined;
    }
  }

  /** A WsgiAuthError from a non-2xx response: Backstage's error JSON if any, else the status text. */
  async function responseError(response, what) {
    let body;
    try {
      body = await response.json();
    } catch (_) {
      body = undefined;
    }
    const error = body && typeof body === 'object' ? body.error : undefined;
    if (error && typeof error === 'object' && error.name) {
      return new WsgiAuthError(error.name, error.message, response.status);
    }
    return new WsgiAuthError('Error', `${what}, ${response.statusText}`, response.status);
  }

  const GOOGLE_SCOPE = 'https://www.googleapis.com/auth/';
  const OIDC_SCOPES = ['openid', 'email', 'profile', 'offline_access'];
  /**
   * Each Backstage provider's title and default scopes, as Backstage's own frontend
   * APIs (`@backstage/core-app-api`, apis/implementations/auth) define them, and which
   * ids are proxy providers (refresh only, as ProxiedSignInPage uses them); options
   * given to `auth.provider(id, options)` win.
   */
  const KNOWN_PROVIDERS = {
    atlassian: { title: 'Atlassian' },
    auth0: { title: 'Auth0' },
    awsalb: { title: 'AWS ALB', proxy: true },
    azureEasyAuth: { title: 'Azure Easy Auth', proxy: true },
    bitbucket: { title: 'Bitbucket', defaultScopes: ['account'] },
    bitbucketServer: { title: 'Bitbucket Server', defaultScopes: ['PROJECT_ADMIN'] },
    cfaccess: { title: 'Cloudflare Access', proxy: true },
    gcpIap: { title: 'Google IAP', proxy: true },
    github: { title: 'GitHub', defaultScopes: ['read:user'] },
    gitlab: { title: 'GitLab', defaultScopes: ['read_user'] },
    google: {
      title: 'Google',
      defaultScopes: ['openid', `${GOOGLE_SCOPE}userinfo.email`, `${GOOGLE_SCOPE}userinfo.profile`],
    },
    guest: { title: 'Guest', proxy: true },
    microsoft: {
      title: 'Microsoft',
      defaultScopes: ['openid', 'offline_access', 'profile', 'email', 'User.Read'],
    },
    oauth2: { title: 'Your Identity Provider' },
    oauth2Proxy: { title: 'OAuth2 Proxy', proxy: true },
    oidc: { title: 'OIDC' },
    okta: { title: 'Okta', defaultScopes: OIDC_SCOPES },
    onelogin: { title: 'onelogin', defaultScopes: OIDC_SCOPES },
    openshift: { title: 'OpenShift', defaultScopes: ['user:info'] },
    pinniped: { title: 'Pinniped' },
    saml: { title: 'SAML' },
  };

  /** One sign-in provider (`auth.provider(id, options)`); holds that provider's session. */
  class AuthProvider {
    #auth;
    #session = null;
    #refreshing = null; // { scopes, promise }: the refresh in flight, shared by concurrent callers
    #signingIn = null; // the popup in flight, so a double click opens one popup
    #generation = 0; // bumped on sign-out so late answers cannot sign the user back in

    constructor(auth, id, options = {}) {
      const known = Object.hasOwn(KNOWN_PROVIDERS, id) ? KNOWN_PROVIDERS[id] : {};
      this.#auth = auth;
      this.id = id;
      this.title = options.title || known.title || id;
      this.proxy = Boolean(options.proxy ?? known.proxy);
      this.defaultScopes = splitScopes(options.defaultScopes ?? known.defaultScopes);
      this.flow = options.flow || 'auto';
      if (!['auto', 'popup', 'redirect'].includes(this.flow)) {
        throw new TypeError(`flow must be 'auto', 'popup' or 'redirect', not ${this.flow}`);
      }
    }

    /** The current session of this provider, or null. */
    get session() {
      return this.#session;
    }

    /** Sign in interactively (popup or redirect); proxy providers just refresh. */
    signIn({ scopes } = {}) {
      if (this.proxy) return this.#refresh([]);
      if (this.#signingIn) return this.#signingIn;
      const wanted = splitScopes([this.defaultScopes, this.#session?.scopes, scopes]);
      // No await before window.open: the popup must open within the click's user activation.
      const promise = this.#createSession(wanted).finally(() => {
        if (this.#signingIn === promise) this.#signingIn = null;
      });
      this.#signingIn = promise;
      return promise;
    }

    /**
     * The session, refreshed silently if near expiry or missing scopes; a popup only if
     * that fails and `optional` is false. With `optional`, resolves undefined when signed out.
     */
    async getSession({ optional = false, scopes } = {}) {
      const wanted = splitScopes(scopes);
      const current = this.#session;
      if (current && hasScopes(current, wanted) && !this.#auth._needsRefresh(current)) {
        return current;
      }
      // Scope upgrade: ask for what we have, what is asked and the defaults, all at once.
      const extended = this.proxy ? [] : splitScopes([current?.scopes, wanted, this.defaultScopes]);
      try {
        const session = await this.#refresh(extended);
        if (!hasScopes(session, wanted)) {
          throw new WsgiAuthError('Error', 'Refreshed session did not receive the required scopes');
        }
        return session;
      } catch (error) {
        if (optional) {
          // A failed refresh (a network blip) leaves a session that has not expired usable.
          const kept = this.#session;
          const usable = kept && kept.expiresAt > Date.now() && hasScopes(kept, wanted);
          return usable ? kept : undefined;
        }
        if (this.proxy) throw error;
        return this.signIn({ scopes: extended });
      }
    }

    /** Forget the session here and on the server (OAuth logout; proxy sessions are local). */
    async signOut() {
      this.#generation += 1;
      this.#refreshing = null;
      this.#set(null);
      if (this.proxy) return;
      let response;
      try {
        response = await fetch(this.#url('logout', {}), {
          method: 'POST',
          headers: { 'X-Requested-With': 'XMLHttpRequest' },
          credentials: 'include',
        });
      } catch (error) {
        throw new WsgiAuthError('Error', `Logout request failed, ${error.message}`);
      }
      if (!response.ok) throw await responseError(response, 'Logout request failed');
      if (!(response.headers.get('Content-Type') || '').startsWith('application/json')) return;
      const body = await response.json().catch(() => undefined);
      if (body && typeof body.logoutUrl === 'string') {
        // Only http(s): a `javascript:` URL here would run script in the app's origin.
        const target = new URL(body.logoutUrl, location.href);
        if (target.protocol === 'https:' || target.protocol === 'http:') location.assign(target.href);
      }
    }

    /** `${base}/${id}/${action}?query&env=...`, encoded as Backstage's DefaultAuthConnector does. */
    #url(action, query) {
      const parts = [];
      for (const [key, value] of Object.entries(query)) {
        if (value === true) parts.push(key); // a bare flag, e.g. `optional`
        else if (value != null) parts.push(`${key}=${encodeURIComponent(value)}`);
      }
      if (!this.proxy) parts.push(`env=${encodeURIComponent(this.#auth.environment)}`); // env last
      const search = parts.length ? `?${parts.join('&')}` : '';
      return `${this.#auth.baseUrl}/${encodeURIComponent(this.id)}/${action}${search}`;
    }

    /** One refresh at a time: a caller whose scopes the one in flight covers shares it. */
    #refresh(scopes) {
      const inflight = this.#refreshing;
      if (inflight && scopes.every((scope) => inflight.scopes.includes(scope))) {
        return inflight.promise;
      }
      const run = async () => {
        if (inflight) await inflight.promise.catch(() => undefined);
        return this.#doRefresh(scopes);
      };
      const entry = { scopes, promise: null };
      entry.promise = run().finally(() => {
        if (this.#refreshing === entry) this.#refreshing = null;
      });
      this.#refreshing = entry;
      return entry.promise;
    }

    async #doRefresh(scopes) {
      const generation = this.#generation;
      const url = this.proxy
        ? `${this.#auth.baseUrl}/${encodeURIComponent(this.id)}/refresh`
        : this.#url('refresh', { optional: true, scope: scopes.join(' ') });
      try {
        let response;
        try {
          response = await fetch(url, {
            headers: { 'X-Requested-With': 'XMLHttpRequest' },
            credentials: 'include',
          });
        } catch (error) {
          throw new WsgiAuthError('Error', `Auth refresh request failed, ${error.message}`);
        }
        if (!response.ok) throw await responseError(response, 'Auth refresh request failed');
        const body = await response.json();
        if (body && body.error) throw new WsgiAuthError(body.error.name, body.error.message);
        if (generation !== this.#generation) {
          // A sign-in or sign-out happened meanwhile: its outcome wins over this answer.
          if (this.#session) return this.#session;
          throw new WsgiAuthError('Error', 'Signed out while the session was being refreshed');
        }
        return this.#set(this.#toSession(body));
      } catch (error) {
        // 401: the refresh cookie is gone (signed out elsewhere). Other failures keep a
        // session that has not actually expired yet, so a blip does not sign the user out.
        const current = this.#session;
        if (current && generation === this.#generation &&
            (error.status === 401 || current.expiresAt <= Date.now())) {
          this.#set(null);
        }
        throw error;
      }
    }

    async #createSession(scopes) {
      let body;
      if (this.flow === 'redirect') return this.#redirect(scopes);
      try {
        body = await this.#popup(scopes);
      } catch (error) {
        if (this.flow === 'auto' && error.name === 'PopupRejectedError') return this.#redirect(scopes);
        throw error;
      }
      this.#generation += 1; // an explicit sign-in wins over any refresh still in flight
      return this.#set(this.#toSession(body));
    }

    #popup(scopes) {
      const auth = this.#auth;
      const url = this.#url('start', { scope: scopes.join(' '), origin: location.origin, flow: 'popup' });
      const width = auth.popupWidth;
      const height = auth.popupHeight;
      const left = Math.max(0, window.screen.width / 2 - width / 2);
      const top = Math.max(0, window.screen.height / 2 - height / 2);
      const features = 'menubar=no,location=no,resizable=no,scrollbars=no,status=no,' +
        `width=${width},height=${height},top=${top},left=${left}`;
      const popup = window.open(url, `${this.title} Login`, features);
      if (!popup || typeof popup.closed === 'undefined' || popup.closed) {
        return Promise.reject(new WsgiAuthError('PopupRejectedError', 'Failed to open auth popup.'));
      }
      return new Promise((resolve, reject) => {
        let targetOrigin;
        const listener = (event) => {
          // Any window can post to us: accept only our popup, on the backend's origin,
          // with the expected shape, so a hostile page cannot forge a sign-in.
          if (event.source !== popup || event.origin !== auth.origin) return;
          const data = event.data;
          if (!data || typeof data !== 'object') return;
          if (data.type === 'config_info') {
            targetOrigin = data.targetOrigin;
            return;
          }
          if (data.type !== 'authorization_response') return;
          done();
          if (data.error) {
            const { name, message } = data.error;
            reject(new WsgiAuthError(name || 'Error', message));
          } else {
            resolve(data.response);
          }
        };
        const timer = setInterval(() => {
          if (!popup.closed) return;
          done();
          const message = targetOrigin && targetOrigin !== location.origin
            ? `Login failed, Incorrect app origin, expected ${targetOrigin}`
            : 'Login failed, popup was closed';
          reject(new WsgiAuthError('PopupClosedError', message));
        }, POPUP_POLL_MS);
        const done = () => {
          window.removeEventListener('message', listener);
          clearInterval(timer);
        };
        window.addEventListener('message', listener);
      });
    }

    /** Leave the page for the provider; `restore()` picks the session up on return. */
    #redirect(scopes) {
      location.assign(this.#url('start', {
        scope: scopes.join(' '),
        origin: location.origin,
        redirectUrl: location.href,
        flow: 'redirect',
      }));
      return new Promise(() => {}); // the page is going away
    }

    /** The server's ClientAuthResponse plus `provider`, `scopes` and `expiresAt` (ms epoch). */
    #toSession(body) {
      const identity = body && typeof body === 'object' ? body.backstageIdentity : undefined;
      if (!identity || typeof identity.token !== 'string') {
        throw new WsgiAuthError('Error', `The ${this.title} provider is not configured to support sign-in`);
      }
      const now = Date.now();
      const info = body.providerInfo || {};
      let expiresAt;
      if (this.proxy) {
        const exp = tokenExpiry(identity.token);
        expiresAt = exp ? exp - PROXY_MARGIN_MS : now + PROXY_MARGIN_MS;
      } else {
        const expiries = [info.expiresInSeconds, identity.expiresInSeconds]
          .filter((seconds) => typeof seconds === 'number')
          .map((seconds) => now + seconds * 1000);
        expiresAt = expiries.length ? Math.min(...expiries) : tokenExpiry(identity.token) || now + PROXY_MARGIN_MS;
      }
      return Object.freeze({
        ...body,
        provider: this.id,
        scopes: splitScopes(info.scope),
        expiresAt,
      });
    }

    #set(session) {
      this.#session = session;
      this.#auth._changed(this, session);
      return session;
    }
  }

  /** The client: one per page, holding the providers and the current session. */
  class WsgiAuth {
    #providers = new Map();
    #listeners = new Set();

    constructor(options = {}) {
      const base = new URL(options.baseUrl || '/api/auth', location.href);
      this.baseUrl = base.href.replace(/\/+$/, '');
      this.origin = base.origin;
      this.environment = options.environment || 'development';
      this.popupWidth = options.popupWidth || 450;
      this.popupHeight = options.popupHeight || 730;
      this.refreshMarginSeconds = options.refreshMarginSeconds ?? 180;
      this.tokenOrigins = [location.origin, this.origin];
      for (const origin of options.tokenOrigins || []) {
        // Exact origins only: a path here would wrongly suggest the token is limited to it.
        if (new URL(origin).origin !== origin) {
          throw new TypeError(`tokenOrigins takes origins like 'https://api.example.com', not ${origin}`);
        }
        this.tokenOrigins.push(origin);
      }
      /** The session of the provider signed in last, or null. */
      this.session = null;
    }

    /** The provider with this id, made on first use (later options are ignored). */
    provider(id, options) {
      let provider = this.#providers.get(id);
      if (!provider) {
        provider = new AuthProvider(this, id, options);
        this.#providers.set(id, provider);
      }
      return provider;
    }

    /** Call `callback(session | null)` on every sign-in, refresh and sign-out; returns an unsubscribe. */
    onChange(callback) {
      this.#listeners.add(callback);
      return () => this.#listeners.delete(callback);
    }

    /**
     * `fetch` with the current identity token (refreshed first if near expiry); none when signed
     * out, and none (nor a refresh) for a URL whose origin is not in `this.tokenOrigins`: the
     * page's, `baseUrl`'s and the option's. Takes a URL or a Request, as `fetch` does.
     */
    async fetch(input, init = {}) {
      const request = typeof input?.url === 'string' ? input : null; // a Request, from any frame
      const target = new URL(request ? request.url : input, location.href);
      if (!this.tokenOrigins.includes(target.origin)) return fetch(input, init);
      let session = this.session;
      if (session && this._needsRefresh(session)) {
        session = (await this.provider(session.provider).getSession({ optional: true })) || null;
      }
      const headers = new Headers(init.headers ?? request?.headers); // init.headers replace the Request's
      if (session) headers.set('Authorization', `Bearer ${session.backstageIdentity.token}`);
      return fetch(input, { ...init, headers });
    }

    /**
     * On page load: report a failed redirect sign-in (`?error=` on the URL, which is then
     * removed), else try a silent sign-in with each listed provider, in order.
     * Resolves to the first session found, or null.
     */
    async restore(ids = [...this.#providers.keys()]) {
      const url = new URL(location.href);
      if (url.searchParams.has('error')) {
        const message = url.searchParams.get('error');
        url.searchParams.delete('error');
        history.replaceState(history.state, '', url.href);
        throw new WsgiAuthError('Error', message);
      }
      for (const id of ids) {
        const session = await this.provider(id).getSession({ optional: true });
        if (session) return session;
      }
      return null;
    }

    /** Whether a session is close enough to expiry to refresh before use. */
    _needsRefresh(session) {
      const margin = this.provider(session.provider).proxy ? 0 : this.refreshMarginSeconds * 1000;
      return Date.now() >= session.expiresAt - margin;
    }

    /** Called by providers whenever their session changes. */
    _changed(provider, session) {
      if (session) {
        this.session = session;
      } else if (this.session && this.session.provider === provider.id) {
        // Fall back to another provider still signed in, if any.
        const others = [...this.#providers.values()].map((p) => p.session).filter(Boolean);
        this.session = others.length ? others[others.length - 1] : null;
      } else {
        return;
      }
      for (const callback of [...this.#listeners]) {
        try {
          callback(this.session);
        } catch (error) {
          console.error('wsgiauth: onChange callback failed', error);
        }
      }
    }
  }

  WsgiAuth.Error = WsgiAuthError;
  global.WsgiAuth = WsgiAuth;
})(window);
