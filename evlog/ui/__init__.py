"""The live local page: pipeline health and the analytics as charts, served over HTTP on
loopback by the process that holds the analytics (`--ui` on a follower, or `evlog ui`)."""
