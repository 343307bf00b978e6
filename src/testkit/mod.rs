//! Fake LINE (and later ecforce) HTTP servers, so everything runs and is tested offline.
