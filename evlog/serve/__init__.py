"""`evlog serve`: sources that push. HTTP (records as JSON or NDJSON, providers' webhooks) and
syslog (UDP, TCP) into the log through one bounded intake, each request answered only once what
it carried is committed; the analytics followed in the same process, as `evlog watch` does."""
