"""wotr performance benchmarks: ``bench/run`` prints a table of ratios against baselines."""
