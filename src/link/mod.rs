//! ID linking: the account-link flow (link token + nonce), LINE Login (OIDC + PKCE), link stores.
