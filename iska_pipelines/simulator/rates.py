"""What a gateway's arrival log (`GET /arrivals`) says about a cap: the busiest second."""


def most_in_any_second(times: list[float]) -> int:
    """The highest number of arrivals in any window [t, t + 1 s)."""
    times = sorted(times)
    most, first = 0, 0
    for last, arrived in enumerate(times):
        while arrived - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most
