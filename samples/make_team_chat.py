"""Writes samples/team-chat.jsonl: a deterministic, made-up team chat (one bad line on purpose).

python samples/make_team_chat.py > samples/team-chat.jsonl
"""

import random
import sys
from datetime import UTC, datetime, timedelta

import orjson

AUTHORS = ["ana", "bruno", "chen", "dara", "emeka"]
CHANNELS = ["general", "deploys", "random"]
PHRASES = [
    "morning all",
    "deploy of api v{n} is out",
    "anyone seen the flaky test in ci?",
    "lunch?",
    "reviewing #{n} now",
    "rolled back v{n}, investigating",
    "p99 went from {n} ms to {m} ms after the cache change",
    "thanks!",
    "on call hand-over: nothing open",
    "the dashboard is green again",
]


def main() -> None:
    rng = random.Random(7)
    t = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    out = sys.stdout
    for i in range(1, 1201):
        t += timedelta(seconds=rng.expovariate(1 / 240))
        if t.hour >= 19:
            t = (t + timedelta(days=1)).replace(hour=8, minute=rng.randint(0, 30))
        channel = rng.choices(CHANNELS, weights=[5, 3, 2])[0]
        author = rng.choice(AUTHORS)
        text = rng.choice(PHRASES).format(n=rng.randint(10, 99), m=rng.randint(100, 400))
        record = {
            "id": f"m{i:05d}",
            "ts": t.isoformat().replace("+00:00", "Z"),
            "channel": channel,
            "author": author,
            "text": text,
        }
        if rng.random() < 0.3 and i > 1:
            record["reply_to"] = f"m{rng.randint(max(1, i - 5), i - 1):05d}"
        line = orjson.dumps(record).decode()
        if i == 600:
            line = line[:-12]  # a truncated record, to show the dead-letter table
        out.write(line + "\n")


if __name__ == "__main__":
    main()
