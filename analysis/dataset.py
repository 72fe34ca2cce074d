"""The rramlab run file: one HDF5 file per run, one writer, one reader, one schema version.

Writing (used by the runner)::

    with RunWriter("run.h5", metadata=RunMetadata(recipe=toml_text, station=station_text,
                                                  instruments={"smu": idn}, seed=1)) as run:
        with run.step("forming", "forming", params, cells=[(0, 0), (0, 1)]) as step:
            pulses = step.table("forming_pulses", {
                "row": ("i4", "", "word line index"),
                "voltage": ("f8", "V", "BL pulse amplitude"),
                "current": ("f8", "A", "read current"),
                "compliance": (bool, "bool", "SMU reported compliance"),
            })
            for cell in cells:
                ...
                pulses.append({"row": 0, "voltage": 2.5, "current": 1e-5, "compliance": False})
                run.durability_point()          # at least once per cell

Reading::

    run = open_run("run.h5")
    run.metadata["seed"], run.exit_status          # "incomplete" if the writer was killed
    df = run.table("forming_pulses"); units(df, "current")   # -> "A"

On-disk layout (schema 1)::

    run.h5                          attrs: rramlab_schema = 1
    ├── run/                        attrs written at creation, before any table row:
    │   │                             rramlab_schema = 1, run_id, package_version,
    │   │                             seed (absent if None; decimal string if beyond int64),
    │   │                             host, start_time (ISO 8601 UTC), start_time_unix (s),
    │   │                             durability ("flush" | "fsync"),
    │   │                             instruments (JSON {name: *IDN? string}), extras (JSON),
    │   │                             recipe_sha256, station_sha256,
    │   │                             python_version, numpy_version, h5py_version, hdf5_version
    │   │                           attrs written at close (absent => run "incomplete"):
    │   │                             stop_time, stop_time_unix, exit_message, exit_traceback,
    │   │                             exit_status ("completed" | "interrupted" | "failed" | "aborted")
    │   ├── recipe                  scalar UTF-8 string: recipe TOML text          units = ""
    │   └── station                 scalar UTF-8 string: station file text         units = ""
    ├── steps/
    │   └── 000_forming/            attrs: index, name, protocol, parameters (JSON), status
    │       │                         ("running" | "completed" | "interrupted" | "failed" |
    │       │                         "aborted" | "skipped"), message, start_time(_unix),
    │       │                         stop_time(_unix), tables (JSON list of table names)
    │       └── cells               int64 (n, 2): (row, col) of each cell        units = ""
    └── tables/
        └── forming_pulses          1-D compound dataset, chunked, maxshape = (None,)
                                    fields: seq (int64, 0..n-1), then the declared columns
                                    attrs: units (JSON {column: unit}, e.g. {"seq": "",
                                      "voltage": "V", "current": "A", "compliance": "bool"}),
                                      descriptions (JSON {column: text}), description,
                                      step ("000_forming" or ""), committed_rows

Units are unprefixed SI ("V", "A", "S", "s", "Ω"); "" is dimensionless and "bool" marks flags.
Strings are variable-length UTF-8; booleans are numpy ``bool`` (h5py's FALSE/TRUE enum on int8).

Why one compound dataset per table (not one dataset per column): a row is one element of one
chunk, written by one call, so a crash cannot leave a row present in some columns and missing in
others, and ``seq`` inside the row vouches for the whole row; a batch is one resize and one write
instead of one per column (per-column appends measured 3-6x slower per record, see
the benchmarks); ``h5py.File(p)["tables/x"][:]`` is a numpy structured array that
``pandas.DataFrame`` takes as is; h5web and silx show a compound dataset as one table with named
columns. The units of all columns sit in the dataset's single ``units`` attribute, a JSON mapping
that any viewer displays as text.

Durability (the crash tests): rows are buffered per table and written in batches
of ``batch_rows`` (default 1024; never fewer than the batch size unless a durability point or the
close forces it). :meth:`RunWriter.durability_point` writes every buffer, stores each table's
``committed_rows`` attribute and flushes the file (plus ``os.fsync`` with ``durability="fsync"``);
rows are committed when it returns and :attr:`Table.committed_rows` says how many. The file uses
HDF5's default (compatible) format without SWMR, so after ``kill -9`` it opens with plain h5py and
holds the metadata and every committed row; the reader returns exactly the committed rows whose
``seq`` matches their index. ``durability="flush"`` survives a killed process, not a power cut.
Buffered rows live in the writer: use it as a context manager or call ``close()`` in a
``finally``. A viewer can read a file that is still being written with
``open_run(p, locking=False)`` (consistent up to the last durability point).
"""

from __future__ import annotations

from .dataset_build import build_run_file, import_run_file
from .dataset_reader import (
    DamagedFileError,
    RunData,
    RunState,
    SkippedRowsWarning,
    StepRecord,
    check_schema,
    open_run,
    units,
)
from .dataset_schema import (
    EXIT_STATUSES,
    INCOMPLETE,
    SCHEMA_VERSION,
    STEP_STATUSES,
    Column,
    DatasetError,
    DatasetWriteError,
    NotARunFileError,
    SchemaVersionError,
)
from .dataset_writer import DEFAULT_BATCH_ROWS, RunMetadata, RunWriter, Step, Table
from .journal import DiskFullError, JournalError, journal_path

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DamagedFileError",
    "DiskFullError",
    "JournalError",
    "RunState",
    "SkippedRowsWarning",
    "build_run_file",
    "import_run_file",
    "journal_path",
    "EXIT_STATUSES",
    "INCOMPLETE",
    "SCHEMA_VERSION",
    "STEP_STATUSES",
    "Column",
    "DatasetError",
    "DatasetWriteError",
    "NotARunFileError",
    "RunData",
    "RunMetadata",
    "RunWriter",
    "SchemaVersionError",
    "Step",
    "StepRecord",
    "Table",
    "check_schema",
    "open_run",
    "units",
]
