"""Storage: the durable event log and catalogue (SQL), online state (memory, Redis), id maps."""
