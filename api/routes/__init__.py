"""One router per resource: health, sites, runs, sweeps, live, metrics."""
