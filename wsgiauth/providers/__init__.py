"""The built-in providers, one module each, each exporting its ``module`` (a ``ProviderModule``).

``guest`` (proxy, development), ``oidc`` and ``oauth2`` are written only against the
public provider-author API (:mod:`wsgiauth.oauth`, :mod:`wsgiauth.proxy`,
:mod:`wsgiauth.sign_in`), as a third-party provider is; import-linter checks it.
They are loaded by :mod:`wsgiauth.registry` only when configured.
"""
