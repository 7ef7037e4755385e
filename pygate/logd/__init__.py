"""`pygate logd`: the process that owns the log store (see README, "Log daemon")."""
