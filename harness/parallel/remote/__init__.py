"""Several harnesses on several machines, one git remote: leases on the remote that expire (`lease`), the
holder's heartbeat (`heartbeat`), and the serial loop's leased iteration (`leased`)."""
