"""The live page's analytics panels: each is a query over the built-in projections' views and how
to draw its rows. The page shows every panel's SQL and offers its rows as CSV and Parquet."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Panel:
    """`chart`: "line" (first column the x axis; with `series`, one line per value of that
    column, else one line per other column), "bars" (label, value[, detail...]), "heatmap"
    (weekday 1-7, hour 0-23, value) or "table"."""

    id: str
    title: str
    group: str
    sql: str
    chart: str
    series: str | None = None
    note: str = ""


PANELS: tuple[Panel, ...] = (
    Panel(
        "messages_per_day",
        "Messages per day",
        "messages",
        "SELECT day, stream, messages FROM messages_per_day ORDER BY day, stream",
        "line",
        series="stream",
    ),
    Panel(
        "messages_per_author",
        "Messages per author",
        "messages",
        "SELECT author, messages, round(avg_chars) AS avg_chars, media\n"
        "FROM messages_per_author ORDER BY messages DESC, author LIMIT 25",
        "bars",
    ),
    Panel(
        "response_times",
        "Who answers whom",
        "messages",
        "SELECT responder || ' → ' || to_author AS pair, responses,\n"
        "       round(median_seconds / 60, 1) AS median_minutes\n"
        "FROM response_times ORDER BY responses DESC, pair LIMIT 25",
        "bars",
        note="a response is a message whose previous message in the stream is by someone else",
    ),
    Panel(
        "activity_by_hour_of_week",
        "Activity by hour of week",
        "messages",
        "SELECT weekday, hour, sum(messages) AS messages\n"
        "FROM activity_by_hour_of_week GROUP BY ALL ORDER BY weekday, hour",
        "heatmap",
        note="message times as the source wrote them",
    ),
    Panel(
        "git_weekly",
        "Commits and churn per week",
        "git",
        "SELECT CAST(date_trunc('week', committed_at) AS DATE) AS week, count(*) AS commits,\n"
        "       sum(added + deleted) AS churn\n"
        "FROM git_commits WHERE NOT is_merge GROUP BY ALL ORDER BY week",
        "line",
    ),
    Panel(
        "git_hotspots",
        "Hotspots (commits × authors)",
        "git",
        "SELECT path, score, commits, authors, churn FROM git_hotspots\n"
        "ORDER BY score DESC, churn DESC, path LIMIT 25",
        "bars",
    ),
    Panel(
        "git_coupling",
        "Files that change together",
        "git",
        "SELECT path_a || ' ⇄ ' || path_b AS pair, together, degree FROM git_coupling\n"
        "ORDER BY together DESC, pair LIMIT 25",
        "bars",
    ),
    Panel(
        "git_authors",
        "Authors",
        "git",
        "SELECT name, commits, files_touched, added + deleted AS churn, active_days\n"
        "FROM git_authors ORDER BY commits DESC, name LIMIT 25",
        "bars",
        note=".mailmap applied, as git shortlog",
    ),
)

BY_ID = {p.id: p for p in PANELS}
