// A SAML 2.0 identity provider on 127.0.0.1 for wsgiauth's end-to-end tests.
//
// The SAML work is samlify's (an independent implementation: xml-crypto, not
// xmlsec1): it parses the SP's AuthnRequest (HTTP-Redirect binding) and builds the
// signed Response (HTTP-POST binding). This file only serves it: a login form that
// takes any user name (the NameID), then a page that POSTs the Response to the
// SP's assertion consumer service, as every browser-based IdP does.
//
// Usage: node server.mjs <port> <key.pem> <cert.pem> <SP metadata URL>
import http from 'node:http';
import { readFileSync } from 'node:fs';
import samlify from 'samlify'; // CommonJS: the default import is the whole module

const [port, keyPath, certPath, spMetadataUrl] = process.argv.slice(2);
// No XSD validator is installed (samlify's need Java or a wasm xmllint); the SP
// under test validates what it receives.
samlify.setSchemaValidator({ validate: () => Promise.resolve('skipped') });

// localhost, as the app under test: one site, so its SameSite=Lax flow cookie
// goes with the POST this IdP's page makes to it (as with an IdP on the company
// domain; a cross-site IdP needs https, where the flow cookie is SameSite=None).
const base = `http://localhost:${port}`;
const { binding } = samlify.Constants.namespace;
const idp = samlify.IdentityProvider({
  entityID: `${base}/metadata`,
  privateKey: readFileSync(keyPath, 'utf8'),
  signingCert: readFileSync(certPath, 'utf8'),
  singleSignOnService: [{ Binding: binding.redirect, Location: `${base}/sso` }],
  nameIDFormat: ['urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified'],
});

let sp = null;
async function serviceProvider() {
  if (sp === null) {
    const answer = await fetch(spMetadataUrl, { signal: AbortSignal.timeout(5000) });
    // Sign the assertion (the SP metadata asks for it) and the whole message.
    sp = samlify.ServiceProvider({ metadata: await answer.text(), wantMessageSigned: true });
  }
  return sp;
}

const pending = new Map(); // login id -> { extract, relayState }
const escape = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Test SAML IdP</title></head><body>${body}</body></html>`);
}

// samlify's default response leaves out the AuthnStatement (the Web Browser SSO
// profile requires one) and attributes; fill them in, and every other tag as
// samlify itself would.
function fill(template, target, flow, user) {
  const now = new Date();
  const later = new Date(now.getTime() + 5 * 60 * 1000);
  const acs = target.entityMeta.getAssertionConsumerService('post');
  const id = idp.entitySetting.generateID();
  const authn = `<saml:AuthnStatement AuthnInstant="${now.toISOString()}" SessionIndex="${crypto.randomUUID()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`;
  const attributes = `<saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>${escape(user)}@example.com</saml:AttributeValue></saml:Attribute><saml:Attribute Name="displayName"><saml:AttributeValue>${escape(user)}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>`;
  const context = samlify.SamlLib.replaceTagsByValue(
    template.replace('{AuthnStatement}', authn).replace('{AttributeStatement}', attributes),
    {
      ID: id,
      AssertionID: idp.entitySetting.generateID(),
      Destination: acs,
      Audience: target.entityMeta.getEntityID(),
      SubjectRecipient: acs,
      Issuer: idp.entityMeta.getEntityID(),
      IssueInstant: now.toISOString(),
      StatusCode: samlify.Constants.StatusCode.Success,
      ConditionsNotBefore: now.toISOString(),
      ConditionsNotOnOrAfter: later.toISOString(),
      SubjectConfirmationDataNotOnOrAfter: later.toISOString(),
      NameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
      NameID: user,
      InResponseTo: flow.extract.request.id,
    },
  );
  return { id, context };
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function handle(req, res) {
  const url = new URL(req.url, base);
  if (req.method === 'GET' && url.pathname === '/metadata') {
    res.writeHead(200, { 'Content-Type': 'application/samlmetadata+xml' });
    res.end(idp.getMetadata());
    return;
  }
  if (req.method === 'GET' && url.pathname === '/sso') {
    const query = Object.fromEntries(url.searchParams);
    const { extract } = await idp.parseLoginRequest(await serviceProvider(), 'redirect', {
      query,
      octetString: url.search.slice(1),
    });
    const id = crypto.randomUUID();
    pending.set(id, { extract, relayState: query.RelayState });
    page(res, 200, `<h1>Test SAML IdP</h1>
<form method="post" action="/login">
<input type="hidden" name="login" value="${escape(id)}">
<label>User name <input name="username" autofocus></label>
<button type="submit">Sign in</button>
</form>`);
    return;
  }
  if (req.method === 'POST' && url.pathname === '/login') {
    const form = await readForm(req);
    const flow = pending.get(form.get('login'));
    pending.delete(form.get('login'));
    if (!flow) {
      page(res, 400, 'Unknown login');
      return;
    }
    const target = await serviceProvider();
    const user = form.get('username') || '';
    const { context, entityEndpoint } = await idp.createLoginResponse(
      target,
      { extract: flow.extract },
      'post',
      { email: user },
      { relayState: flow.relayState, customTagReplacement: (template) => fill(template, target, flow, user) },
    );
    page(res, 200, `<form id="post" method="post" action="${escape(entityEndpoint)}">
<input type="hidden" name="SAMLResponse" value="${escape(context)}">
<input type="hidden" name="RelayState" value="${escape(flow.relayState || '')}">
<button type="submit">Continue</button>
</form>
<script>document.getElementById('post').submit();</script>`);
    return;
  }
  page(res, 404, 'Not found');
}

http
  .createServer((req, res) => {
    handle(req, res).catch((error) => {
      console.error(error);
      page(res, 500, `IdP error: ${escape(error.message || error)}`);
    });
  })
  .listen(Number(port), "127.0.0.1", () => console.log(`READY ${base}`));
