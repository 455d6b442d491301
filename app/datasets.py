"""Data sources: a CSV/Parquet file with a schema, the UCI download, and the seeded synthetic generator.

Loaders return the raw frame with the schema's column names; typing and checks are done by
:mod:`app.training.validate` so that every problem is reported, not just the first one pandas hits.
"""

from __future__ import annotations

import functools
import hashlib
import io
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from app.core.schema import DatasetSchema
from app.core.validate import rename_source_columns  # lives with row validation; callers may import it here

UCI_URL = "https://archive.ics.uci.edu/static/public/350/default+of+credit+card+clients.zip"
# sha256 of the UCI data as a CSV with the UCI codes (X1..X23, Y), as `to_csv(index=False)` writes it;
# the same bytes as ../shared/data/uci_credit_default.csv.
UCI_CSV_SHA256 = "ac9be603d95064632879fad9c36e44fc5a75bdaae534eb88fd9865b829d47372"
UCI_ROWS = 30_000


class DataError(ValueError):
    """A data file cannot be read as a data set (missing, empty, unreadable)."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_table(path: str | Path, schema: DatasetSchema) -> pd.DataFrame:
    """Read a CSV or Parquet file and rename UCI-coded columns (X1..X23, Y) to the schema's names.

    Columns are read as pandas infers them; a column with a stray string stays ``object`` so that the
    validator can point at the offending rows.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data file is empty: {path}")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {str(e).splitlines()[0]}") from e
    if len(df.columns) == 0:
        raise DataError(f"data file has no columns: {path}")
    return rename_source_columns(df, schema)


# ---- UCI download ------------------------------------------------------------------------------------
def download_uci(dest: str | Path, url: str = UCI_URL, expected_sha256: str = UCI_CSV_SHA256,
                 timeout: float = 60.0) -> Path:
    """Fetch the original UCI archive, convert its .xls to the UCI-coded CSV and verify the checksum.

    The file is written only if the checksum matches; a mismatch raises and leaves nothing behind.
    """
    dest = Path(dest)
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https URL by default)
        payload = resp.read()
    csv_bytes = uci_archive_to_csv(payload)
    got = hashlib.sha256(csv_bytes).hexdigest()
    if got != expected_sha256:
        raise DataError(f"checksum mismatch for {url}: expected sha256 {expected_sha256}, got {got}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    tmp.write_bytes(csv_bytes)
    tmp.replace(dest)
    return dest


def uci_archive_to_csv(payload: bytes) -> bytes:
    """The UCI zip holds one .xls (row 1: X1..X23,Y codes; row 2: names; column 0: ID) or a CSV."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile as e:
        raise DataError("downloaded file is not a zip archive") from e
    members = [n for n in zf.namelist() if n.lower().endswith((".xls", ".xlsx", ".csv"))]
    if not members:
        raise DataError("archive holds no .xls or .csv file")
    raw = zf.read(members[0])
    if members[0].lower().endswith(".csv"):
        df = pd.read_csv(io.BytesIO(raw))
    else:
        df = pd.read_excel(io.BytesIO(raw), header=1)  # needs xlrd for .xls
    df = df.drop(columns=[c for c in df.columns if str(c).upper() == "ID"])
    if df.shape[1] != 24:
        raise DataError(f"unexpected UCI layout: {df.shape[1]} columns, expected 24")
    df.columns = [f"X{i}" for i in range(1, 24)] + ["Y"]
    return df.to_csv(index=False).encode()


# ---- synthetic generator -----------------------------------------------------------------------------
CHUNK_ROWS = 200_000
_RATINGS = ("Good", "Standard", "Poor")
_COLUMNS = (["limit_bal", "sex", "education", "marriage", "age", "pay_0", "pay_2", "pay_3", "pay_4", "pay_5",
             "pay_6"] + [f"bill_amt{k}" for k in range(1, 7)] + [f"pay_amt{k}" for k in range(1, 7)])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _synthetic_chunk(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One chunk of applicants with the UCI schema, and the latent risk logit (before calibration).

    Signal: months of payment delay (recent ones weigh most), utilisation of the credit limit, the ratio of
    payments to bills, a younger age and a lower limit; plus a latent factor no column shows (noise).

    ``shift`` (0..1, 0 = the base population, drawing exactly the same numbers) moves the population and its
    truth: an income shock (lower limits, fuller utilisation, smaller payments) and a new product mix (younger
    applicants), and outcomes driven more by utilisation, low payments and youth than by past delays (the shock
    hits people who never missed a payment). It draws no extra random numbers: a seed gives the same skeleton.
    """
    cols: dict[str, np.ndarray] = {}
    latent = rng.normal(0.0, 1.0, n)  # the applicant's unobserved risk
    limit = np.exp(rng.normal(11.7 - 0.25 * latent, 0.75, n) - 0.8 * shift)
    limit = np.clip(np.round(limit / 10_000) * 10_000, 10_000, 1_000_000)
    cols["limit_bal"] = limit
    cols["sex"] = rng.choice([1, 2], n, p=[0.40, 0.60])
    cols["education"] = rng.choice([0, 1, 2, 3, 4, 5, 6], n,
                                   p=[0.0005, 0.352, 0.467, 0.164, 0.004, 0.0095, 0.003])
    cols["marriage"] = rng.choice([0, 1, 2, 3], n, p=[0.002, 0.455, 0.532, 0.011])
    cols["age"] = np.clip(np.round(21 + rng.gamma(2.2, 6.5, n) * (1.0 - 0.45 * shift)), 21, 79)

    # repayment status, oldest month (pay_6) first; delays persist month to month
    propensity = 0.55 * latent + rng.normal(0, 0.6, n)
    status = np.where(rng.random(n) < 0.18, -2, np.where(rng.random(n) < 0.3, -1, 0))
    pay = {}
    for name in ("pay_6", "pay_5", "pay_4", "pay_3", "pay_2", "pay_0"):
        shock = propensity + rng.normal(0, 0.9, n)
        worsen = shock > 1.3
        recover = shock < -0.2
        nxt = np.where(worsen, np.maximum(status, 0) + 1, status)
        nxt = np.where(recover & (status > 0), status - 1, nxt)
        nxt = np.where(recover & (status <= 0) & (rng.random(n) < 0.1), -1, nxt)
        status = np.clip(nxt, -2, 8)
        pay[name] = status
    for name in ("pay_0", "pay_2", "pay_3", "pay_4", "pay_5", "pay_6"):
        cols[name] = pay[name]

    # bills: utilisation of the limit, drifting over months; a few negative (credit balance)
    util = np.clip(rng.beta(0.9, 1.6, n) + 0.12 * latent + 0.25 * shift, 0, 1.05)
    for k in range(6, 0, -1):
        month_util = np.clip(util + rng.normal(0, 0.06, n), -0.02, 1.1)
        bill = limit * month_util
        bill = np.where(cols[f"pay_{0 if k == 1 else k}"] == -2, 0.0, bill)
        cols[f"bill_amt{k}"] = np.round(bill)
    # payments: paid in full, a share of the bill when revolving, little when delayed
    for k in range(1, 7):
        st = cols[f"pay_{0 if k == 1 else k}"]
        prev_bill = cols[f"bill_amt{min(k + 1, 6)}"]
        share = np.where(st == -1, 1.0, np.where(st <= 0, rng.uniform(0.03, 0.25, n),
                                                   rng.uniform(0.0, 0.05, n)))
        amount = np.maximum(prev_bill, 0) * share * rng.lognormal(0, 0.3, n) * (1.0 - 0.7 * shift)
        cols[f"pay_amt{k}"] = np.round(np.clip(amount, 0, 1_000_000))

    delay_recent = np.maximum(cols["pay_0"], 0)
    delay_max = np.max(np.stack([np.maximum(pay[p], 0) for p in pay]), axis=0)
    util_now = np.clip(cols["bill_amt1"] / limit, -0.1, 1.2)
    pay_ratio = np.clip(cols["pay_amt1"] / np.maximum(cols["bill_amt2"], 1.0), 0, 1.5)
    if shift == 0.0:  # the base truth, bit for bit
        logit = (0.75 * delay_recent + 0.25 * delay_max + 0.9 * util_now - 0.6 * pay_ratio
                 - 0.012 * (cols["age"] - 35) - 0.25 * np.log(limit / 140_000) + 0.8 * latent
                 + rng.normal(0, 0.5, n))
        return cols, logit
    s = shift  # the shifted truth: past delays count less; utilisation, low payments, youth and (overextended)
    # high limits much more
    logit = ((0.75 - 0.7 * s) * delay_recent + (0.25 - 0.25 * s) * delay_max + (0.9 + 4.0 * s) * util_now
             - (0.6 + 3.0 * s) * pay_ratio - (0.012 + 0.08 * s) * (cols["age"] - 35)
             + (0.8 * s - 0.25) * np.log(limit / 140_000) + 0.8 * latent + rng.normal(0, 0.5, n) - 1.3 * s)
    return cols, logit


def _calibration(seed: int, classes: int) -> np.ndarray:
    """Cut points on the risk logit, found on a fixed sample so that every chunk uses the same ones:
    ~22 % bad for the binary target; 48 / 30 / 22 % Good / Standard / Poor for three classes."""
    rng = np.random.default_rng([seed, 7919])
    _, logit = _synthetic_chunk(rng, 100_000)
    noisy = logit + rng.logistic(0, 1.0, logit.size)
    qs = [0.78] if classes == 2 else [0.48, 0.78]
    return np.quantile(noisy, qs)


def iter_synthetic(n_rows: int, seed: int = 42, classes: int = 2,
                   chunk_rows: int = CHUNK_ROWS, shift: float = 0.0) -> Iterator[pd.DataFrame]:
    """Yield the synthetic data set in chunks (constant memory for any size). ``shift`` (0..1): a drifted
    population with its own truth (see :func:`_synthetic_chunk`); the class cut points stay the base
    population's, so the shock also raises the bad rate. 0: the base population, the same bytes as ever."""
    if n_rows < 1:
        raise ValueError("n_rows must be at least 1")
    if classes not in (2, 3):
        raise ValueError("classes must be 2 or 3")
    if not 0.0 <= shift <= 1.0:
        raise ValueError("shift must be between 0 and 1")
    cuts = _calibration(seed, classes)
    seqs = np.random.SeedSequence(seed).spawn((n_rows + chunk_rows - 1) // chunk_rows)
    remaining = n_rows
    for seq in seqs:
        n = min(chunk_rows, remaining)
        rng = np.random.default_rng(seq)
        cols, logit = _synthetic_chunk(rng, n, shift)
        noisy = logit + rng.logistic(0, 1.0, n)
        grade = np.searchsorted(cuts, noisy)  # 0..len(cuts)
        df = pd.DataFrame({k: cols[k].astype(np.int64) for k in _COLUMNS})
        if classes == 2:
            df["default"] = grade.astype(np.int64)
        else:
            df["rating"] = np.asarray(_RATINGS, dtype=object)[grade]
        remaining -= n
        yield df


def generate_synthetic(n_rows: int, seed: int = 42, classes: int = 2, shift: float = 0.0) -> pd.DataFrame:
    """The whole synthetic data set in memory (fine up to a few million rows); ``shift``: see
    :func:`iter_synthetic`."""
    return pd.concat(list(iter_synthetic(n_rows, seed, classes, shift=shift)), ignore_index=True)


def write_synthetic(path: str | Path, n_rows: int, seed: int = 42, classes: int = 2,
                    progress: Callable[[int], None] | None = None) -> Path:
    """Write the synthetic data set chunk by chunk as CSV or Parquet (by extension); atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    parquet = path.suffix.lower() in {".parquet", ".pq"}
    writer = None
    try:
        with open(tmp, "wb") as fh:
            for i, chunk in enumerate(iter_synthetic(n_rows, seed, classes)):
                if parquet:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(chunk, preserve_index=False)
                    writer = writer or pq.ParquetWriter(fh, table.schema)
                    writer.write_table(table)
                else:
                    fh.write(chunk.to_csv(index=False, header=(i == 0)).encode())
                if progress:
                    progress(len(chunk))
            if writer is not None:
                writer.close()
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---- loan applications: a lender's own export (spaces in column names, string categories, nulls) -------
LOAN_TARGET = "Loan Status"
LOAN_CLASSES = ("repaid", "charged off")
LOAN_CLASSES_3 = ("repaid", "repaid late", "charged off")  # the three-class target (schema loan_applications_3class)
_EMPLOYMENT = {"salaried": 0.0, "self-employed": 0.35, "café owner": 0.5, "retired": -0.1, "student": 0.45,
               "unemployed": 1.1}  # category: its effect on the risk logit
_PURPOSE = {"debt consolidation": 0.3, "home/improvement": -0.2, "car": -0.1, "education": 0.1,
            "medical": 0.35, "small business": 0.55, "other": 0.1}
_HOME = {"own": -0.4, "mortgage": -0.15, "rent": 0.25, "living with parents": 0.1}
_REGION = {"Île-de-France": 0.0, "Bayern": -0.1, "Lombardia": 0.05, "Cataluña": 0.1, "Noord-Brabant": -0.05,
           "Zürich": -0.15}
_GENDER = ("female", "male", "non-binary")


def _pick(rng: np.random.Generator, effects: dict[str, float], p: list[float], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw a string category per row; return the values (object array) and their effects on the logit."""
    keys = np.asarray(list(effects), dtype=object)
    idx = rng.choice(len(keys), n, p=p)
    return keys[idx], np.asarray(list(effects.values()))[idx]


def _loan_rows(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Loan applications in the lender's column names, and the risk logit (before noise and calibration).

    Signal: loan amount against income, card utilisation, late payments, employment type, loan purpose, home
    ownership, time at the address, existing loans, a younger age; the region and gender carry none."""
    latent = rng.normal(0.0, 1.0, n)
    age = np.clip(np.round(18 + rng.gamma(2.5, 7.0, n)), 18, 80)
    employment, e_emp = _pick(rng, _EMPLOYMENT, [0.55, 0.15, 0.04, 0.1, 0.08, 0.08], n)
    employment = np.where(age >= 67, "retired", employment).astype(object)
    e_emp = np.where(age >= 67, _EMPLOYMENT["retired"], e_emp)
    income = np.exp(rng.normal(10.5 - 0.2 * latent, 0.5, n))
    income = np.round(np.where(employment == "unemployed", income * 0.3, income), -2)
    amount = np.clip(np.round(np.exp(rng.normal(9.0, 0.8, n)), -2), 500, 50_000)
    purpose, e_pur = _pick(rng, _PURPOSE, [0.3, 0.15, 0.2, 0.08, 0.07, 0.08, 0.12], n)
    home, e_home = _pick(rng, _HOME, [0.25, 0.3, 0.35, 0.1], n)
    region, _ = _pick(rng, _REGION, [0.25, 0.2, 0.15, 0.15, 0.15, 0.1], n)
    months = np.clip(np.round(rng.exponential(60, n) * np.where(home == "rent", 0.5, 1.0)), 0, 600)
    utilisation = np.clip(np.round(100 * rng.beta(1.5, 2.5, n) + 15 * latent, 1), 0, 150)
    late = np.clip(rng.poisson(np.exp(-0.8 + 0.6 * latent)), 0, 12)
    existing = np.clip(rng.poisson(1.2, n), 0, 10)
    term = rng.choice([12, 24, 36, 48, 60, 72, 84], n)
    cols = {
        "Loan Amount (EUR)": amount, "Loan Term (months)": term, "Annual Income": income,
        "Employment Type": employment, "Loan Purpose": purpose, "Home Ownership": home,
        "Months at Address": months, "Age": age, "Gender": rng.choice(np.asarray(_GENDER, dtype=object), n,
                                                                     p=[0.49, 0.48, 0.03]),
        "Region": region, "Existing Loans": existing, "Card Utilisation (%)": utilisation,
        "Late Payments (12m)": late,
    }
    logit = (1.1 * np.log1p(amount / income * 10) + 0.015 * (utilisation - 40) + 0.45 * late + e_emp + e_pur
             + e_home - 0.003 * months + 0.12 * existing - 0.015 * (age - 40) + 0.006 * (term - 36)
             + 0.6 * latent + rng.normal(0, 0.4, n))
    return cols, logit


_LOAN_BAD_SHARE = 0.30
# outcome noise on the risk logit; less for three classes, whose middle band is otherwise mostly noise
_LOAN_NOISE = {2: 1.0, 3: 0.3}
_LOAN_MISSING = {"Annual Income": 0.06, "Employment Type": 0.05, "Months at Address": 0.03}


@functools.lru_cache(maxsize=2)
def _loan_cuts(classes: int) -> tuple[float, ...]:
    """Cut points on the noisy risk logit, found once on a fixed sample: ~30 % charged off; for three classes
    also ~25 % repaid late (between the cuts)."""
    rng = np.random.default_rng(20240)
    _, logit = _loan_rows(rng, 100_000)
    qs = [1 - _LOAN_BAD_SHARE] if classes == 2 else [0.45, 1 - _LOAN_BAD_SHARE]
    return tuple(float(q) for q in np.quantile(logit + rng.logistic(0, _LOAN_NOISE[classes], logit.size), qs))


def generate_loan_applications(n: int, seed: int = 42, classes: int = 2) -> pd.DataFrame:
    """Seeded loan applications as a lender exports them (schema ``data/schemas/loan_applications.yaml``).

    Column names with spaces and brackets; string categories with spaces, slashes and accents; missing values
    in "Annual Income", "Months at Address" (numeric) and "Employment Type" (categorical); the target
    "Loan Status" is ``repaid`` or ``charged off`` (about 30 % charged off). ``classes=3`` adds ``repaid late``
    (about 25 %; schema ``loan_applications_3class.yaml``). Same ``(n, seed, classes)``, same frame.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if classes not in (2, 3):
        raise ValueError("classes must be 2 or 3")
    rng = np.random.default_rng([seed, 31337])
    cols, logit = _loan_rows(rng, n)
    grade = np.searchsorted(_loan_cuts(classes), logit + rng.logistic(0, _LOAN_NOISE[classes], n))
    df = pd.DataFrame(cols)
    for c in ("Loan Term (months)", "Months at Address", "Age", "Existing Loans", "Late Payments (12m)"):
        df[c] = df[c].astype("Int64" if c in _LOAN_MISSING else np.int64)
    for c, share in _LOAN_MISSING.items():
        df.loc[rng.random(n) < share, c] = None if df[c].dtype == object else pd.NA
    df[LOAN_TARGET] = np.asarray(LOAN_CLASSES if classes == 2 else LOAN_CLASSES_3, dtype=object)[grade]
    return df
