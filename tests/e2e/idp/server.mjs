// A real third-party OpenID provider for wsgiauth's end-to-end tests.
//
// Why: the unit tests stub the IdP with `responses`, which only proves that
// wsgiauth agrees with our own reading of the protocol. This runs the npm
// `oidc-provider` (a certified OpenID Provider implementation) on 127.0.0.1,
// so the e2e tests exercise discovery, PKCE, the code exchange, ID token
// validation, userinfo, refresh-token rotation and revocation against code we
// did not write. Development use only: in-memory storage, dev signing keys,
// the built-in "devInteractions" login form (any login, any password).
//
// Usage:
//   node server.mjs [--port N] [--redirect-uri URL]... [--config FILE.json]
// Environment fallbacks: IDP_PORT, IDP_REDIRECT_URIS (space separated),
// IDP_CONFIG (path to a JSON file). Port 0 (the default) picks a free port.
// The JSON file may hold {"port", "redirectUris", "postLogoutRedirectUris",
// "clientId", "clientSecret"}; command-line values win over it.
// When listening, prints exactly one line `READY <issuer>` on stdout.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';

function readOptions() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true },
      config: { type: 'string' },
    },
  });
  const configPath = values.config ?? process.env.IDP_CONFIG;
  const file = configPath ? JSON.parse(readFileSync(configPath, 'utf8')) : {};
  const splitEnv = (name) => (process.env[name] ?? '').split(/\s+/).filter(Boolean);
  const redirectUris = values['redirect-uri']
    ?? file.redirectUris
    ?? splitEnv('IDP_REDIRECT_URIS');
  if (redirectUris.length === 0) {
    throw new Error('at least one redirect URI is required (--redirect-uri URL)');
  }
  return {
    port: Number(values.port ?? file.port ?? process.env.IDP_PORT ?? 0),
    redirectUris,
    postLogoutRedirectUris: values['post-logout-redirect-uri'] ?? file.postLogoutRedirectUris ?? [],
    clientId: file.clientId ?? 'wsgiauth-e2e',
    clientSecret: file.clientSecret ?? 'e2e-secret',
  };
}

// "alice" -> "Alice Example": a name the tests can predict from the login.
function displayName(login) {
  return `${login.charAt(0).toUpperCase()}${login.slice(1)} Example`;
}

function buildConfiguration(options) {
  return {
    clients: [
      {
        client_id: options.clientId,
        client_secret: options.clientSecret,
        redirect_uris: options.redirectUris,
        post_logout_redirect_uris: options.postLogoutRedirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    // devInteractions: the account id is whatever login name was typed in.
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: `${sub}@example.com`,
            email_verified: true,
            name: displayName(sub),
          };
        },
      };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    // Put the scope-granted claims into the ID token too, not only userinfo,
    // so both of wsgiauth's profile sources carry the email and name.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      userinfo: { enabled: true },
    },
    // Backstage's OIDC module always sends a PKCE S256 challenge; demand it, so
    // a wsgiauth that forgot it fails here instead of passing unnoticed.
    pkce: { required: () => true },
    // Issue refresh tokens without the offline_access scope (Backstage does not
    // ask for it) and rotate them on every use, so a test can prove that the
    // old token is dead after a refresh.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => true,
    // Keep refresh tokens valid independently of the IdP browser session.
    expiresWithSession: async () => false,
    // Signed cookies over plain http on 127.0.0.1 (no Secure flag there).
    cookies: { keys: ['wsgiauth-e2e-cookie-key-not-a-secret'] },
  };
}

async function main() {
  const options = readOptions();
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, HOST, resolve);
  });
  // The issuer needs the real port, so the provider is built after listening.
  const { port } = server.address();
  const issuer = `http://${HOST}:${port}`;
  const provider = new Provider(issuer, buildConfiguration(options));
  provider.on('server_error', (ctx, error) => {
    process.stderr.write(`oidc-provider server_error: ${error.stack ?? error}\n`);
  });
  server.on('request', provider.callback());
  process.stdout.write(`READY ${issuer}\n`);

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
