"""Device upkeep: a device's maintenance mode and an elder's away mode (issue #20)."""
