"""The local mesh: every service as its own process on one machine, embedded stores."""
