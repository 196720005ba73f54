"""Result tables (Table 3/4 shaped) and figures (Fig. 2/3/6/7 shaped)."""
