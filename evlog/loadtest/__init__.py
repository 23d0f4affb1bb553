"""`evlog loadtest`: step the offered rate up until the pipeline breaks (runner.py), with
producer processes in open loop (producer.py), and write a report with a chart (chart.py)."""
