"""bench/loadtest: the load test as a benchmark (`python -m bench.loadtest`, the same as `evlog
loadtest`): its code is the product's, in evlog/loadtest/."""

from evlog.loadtest.runner import main

if __name__ == "__main__":
    main()
