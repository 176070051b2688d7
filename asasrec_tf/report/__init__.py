"""Tables and figures from finished runs: Table 2, Figure 2, robustness."""
