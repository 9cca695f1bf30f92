"""Re-create the bundled real series from the data sets statsmodels ships (`pip install statsmodels`).

`python -m data.series.export` writes, next to this file:

- `co2_weekly.csv`: weekly atmospheric CO2 at Mauna Loa, March 1958 to December 2001 (2284 weeks,
  ppm; `statsmodels.datasets.co2`, from Keeling & Whorf's Scripps record). 59 weeks are empty in
  the source and stay empty here: `conf/data/co2.yaml` interpolates them in time.
- `elnino_monthly.csv`: monthly sea surface temperature of the El Nino 1+2 region, January 1950 to
  December 2010 (732 months, degrees C; `statsmodels.datasets.elnino`, from NOAA's Climate
  Prediction Center): a yearly season under irregular multi-year swings.

The search reads these files; nothing is downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def export() -> None:
    import pandas as pd
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data
    co2.index.name = "week"
    co2.round(1).to_csv(HERE / "co2_weekly.csv")
    table = sm.datasets.elnino.load_pandas().data
    months = table.drop(columns="YEAR").stack()
    index = pd.date_range(f"{int(table.YEAR.iloc[0])}-01-01", periods=len(months), freq="MS", name="month")
    pd.DataFrame({"sst": months.to_numpy()}, index=index).to_csv(HERE / "elnino_monthly.csv")


if __name__ == "__main__":
    export()
