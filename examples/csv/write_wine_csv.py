"""Write scikit-learn's wine data set (178 wines, 13 chemical measurements, 3 cultivars)
as wine.csv, the table next to this file: a header row, one wine a row, the cultivar's
name in the last column. Run it again to recreate the file.

    python examples/csv/write_wine_csv.py
"""

from pathlib import Path

from sklearn.datasets import load_wine

wine = load_wine(as_frame=True)
table = wine.frame.rename(columns={"target": "cultivar"})
table["cultivar"] = [f"cultivar_{'ABC'[i]}" for i in wine.target]
table.to_csv(Path(__file__).with_name("wine.csv"), index=False, float_format="%.6g")
