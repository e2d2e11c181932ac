"""PageUp support: the log of failed calls to PageUp, and the bundle of it for PageUp."""
