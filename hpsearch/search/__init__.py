"""Running a search: study creation, samplers, pruners, the trial budget, workers (here,
in processes, on other machines), narrowing rounds and `final`'s one test evaluation;
`reproducible` holds the lagged, slot-based search."""
