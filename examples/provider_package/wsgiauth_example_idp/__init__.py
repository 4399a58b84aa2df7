"""wsgiauth provider for Acme ID; the provider module is :mod:`wsgiauth_example_idp.acme`."""
