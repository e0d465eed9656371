"""Bad inputs, one row each: the tweak of a small good data set and what the Book must say.

To add a case, write a row of ``CASES``: a name, a tweak (a function that changes the good tables
in place), and the error or warning expected with a piece of its text (no error and no warning:
the Book must build without a word). A case with ``check`` also checks what the Book read.
Every case must fail loudly or read the data rightly; none may go on with a wrong reading.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from crosssell import Book, Schema
from crosssell.exceptions import DataWarning, EventTypeWarning, SchemaError

Tables = dict[str, pd.DataFrame]


def good_tables() -> Tables:
    """Three clients, two products, a complaint; every value easy to read one way only."""
    return {
        "contracts": pd.DataFrame(
            {
                "client_id": ["C1", "C2", "C3"],
                "product_id": ["P1", "P1", "P2"],
                "start_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
                "end_date": [None, "2024-06-30", None],
                "value": ["100.50", "1200", "80"],
            }
        ),
        "products": pd.DataFrame({"product_id": ["P1", "P2"], "family": ["A", "B"]}),
        "clients": pd.DataFrame(
            {
                "client_id": ["C1", "C2", "C3"],
                "segment": ["smb", "smb", "mid"],
                "do_not_contact": [False, True, False],
            }
        ),
        "events": pd.DataFrame(
            {
                "client_id": ["C1", "C1"],
                "date": ["2024-04-01", "2024-04-02"],
                "type": ["complaint_opened", "contact"],
            }
        ),
    }


def rename(table: str, old: str, new: str) -> Callable[[Tables], None]:
    """Tweak: rename one column of one table."""

    def tweak(t: Tables) -> None:
        t[table] = t[table].rename(columns={old: new})

    return tweak


def put(table: str, column: str, values: list[Any]) -> Callable[[Tables], None]:
    """Tweak: replace (or add) one column of one table."""

    def tweak(t: Tables) -> None:
        t[table] = t[table].assign(**{column: values})

    return tweak


@dataclass(frozen=True)
class Case:
    """One bad input: what to change, and what the Book must raise or warn."""

    name: str
    tweak: Callable[[Tables], None]
    #: the error class expected, or None when the Book is built
    error: type[Exception] | None = None
    #: the warning class expected while building (None: the Book builds without a word)
    warning: type[Warning] | None = None
    #: a piece of the message, matched literally
    text: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    #: what the Book must hold, when one is built
    check: Callable[[Book], bool] | None = None


def _dnc(book: Book, client: Any) -> bool:
    clients = book.clients.set_index("client_id")
    return bool(clients.loc[client, "do_not_contact"])


CASES = [
    # 1. near-miss names of optional and rule-used columns
    Case(
        "do_not_contact with a trailing blank",
        rename("clients", "do_not_contact", "do_not_contact "),
        error=SchemaError,
        text="clients: column 'do_not_contact ' is spelled like the known column 'do_not_contact'",
    ),
    Case(
        "End_Date with a capital and a blank",
        rename("contracts", "end_date", "End_Date "),
        error=SchemaError,
        text="Schema(end='End_Date ')",
    ),
    Case(
        "Value capitalised",
        rename("contracts", "value", "Value"),
        error=SchemaError,
        text="Did you mean 'value'?",
    ),
    Case(
        "Segment capitalised",
        rename("clients", "segment", "Segment"),
        error=SchemaError,
        text="'Segment' is spelled like the known column 'segment'",
    ),
    Case(
        "a near name beside the known one",
        put("clients", "Segment", ["x", "y", "z"]),
        error=SchemaError,
        text="Both 'Segment' and 'segment' name the same column",
    ),
    Case(
        "event type column in capitals",
        rename("events", "type", "Type"),
        error=SchemaError,
        text="events: missing required column 'type'",
    ),
    Case(
        "near names read under match_names='folded'",
        rename("clients", "do_not_contact", "Do-Not-Contact"),
        warning=DataWarning,
        text="'Do-Not-Contact' as 'do_not_contact'",
        schema={"match_names": "folded"},
        check=lambda book: _dnc(book, "C2"),
    ),
    # 2. ids spelled differently between tables
    Case(
        "text '007' in contracts, integer 7 in clients",
        lambda t: (
            put("contracts", "client_id", ["007", "C2", "C3"])(t),
            put("clients", "client_id", [7, 2, 3])(t),
        ),
        error=SchemaError,
        text="clients: 'client_id' is an integer id spelled differently as text in contracts in "
        "1 row (showing 1): row 0 client_id=7 (as text: '007').",
    ),
    Case(
        "7 and '007' in one column",
        put("contracts", "client_id", [7, "007", "C3"]),
        error=SchemaError,
        text="'client_id' is an integer id spelled differently as text in the same column",
    ),
    Case(
        "'C2 ' and ' C2' beside 'C2'",
        put("contracts", "client_id", ["C1", "C2 ", " C2"]),
        warning=DataWarning,
        text="contracts: 'client_id' held ids with blanks around them in 2 rows (e.g. 'C2 ', "
        "' C2'); the blanks were trimmed; 2 ids now match another id of the column",
        check=lambda book: (
            list(book.client_ids.external) == ["C1", "C2", "C3"] and _dnc(book, "C2")
        ),
    ),
    Case(
        "a do-not-contact client spelled with a blank in clients",
        put("clients", "client_id", ["C1", " C2", "C3"]),
        warning=DataWarning,
        text="clients: 'client_id' held ids with blanks around them in 1 row (e.g. ' C2')",
        check=lambda book: _dnc(book, "C2") and len(book.client_ids) == 3,
    ),
    # 5. numbers and dates read by guess
    Case(
        "'2.500' beside '1.000,50'",
        put("contracts", "value", ["2.500", "1.000,50", "80"]),
        error=SchemaError,
        text="contracts: 'value' is written with a decimal comma (e.g. '1.000,50'), or reads two "
        "ways, in 2 rows (showing 2): row 0 client_id=C1 product_id=P1 value=2.500; row 1 "
        "client_id=C2 product_id=P1 value=1.000,50. Read with a decimal point, '2.500' would be "
        '2.5. Say how the numbers are written: Schema(decimal=",", thousands=".")',
    ),
    Case(
        "decimal commas read as said",
        put("contracts", "value", ["2.500", "1.000,50", "80"]),
        warning=None,
        schema={"decimal": ",", "thousands": "."},
        check=lambda book: book.contracts["value"].tolist() == [2500.0, 1000.5, 80.0],
    ),
    Case(
        "satisfaction with decimal commas",
        put("clients", "satisfaction", ["7,5", "8", "6,5"]),
        error=SchemaError,
        text="clients: 'satisfaction' is written with a decimal comma",
    ),
    Case(
        "dates that all read two ways",
        put("contracts", "start_date", ["01/02/2024", "03/04/2024", "05/06/2024"]),
        error=SchemaError,
        text="contracts: 'start_date' holds dates that read two ways (03/04/2024: 3 April or "
        "March 4) and none that says which part is the day in 3 rows (showing 3): row 0 "
        "client_id=C1 product_id=P1 start_date=01/02/2024; ",
    ),
    Case(
        "day first and month first in one column",
        put("contracts", "start_date", ["13/02/2024", "02/13/2024", "2024-03-01"]),
        error=SchemaError,
        text="'start_date' holds dates with the day first (13/04/2024) and others with the "
        "month first (04/13/2024) in 2 rows",
    ),
    Case(
        "one day-first date decides a column, with a warning",
        put("contracts", "start_date", ["13/02/2024", "03/04/2024", "2024-03-01"]),
        warning=DataWarning,
        text="'start_date' held dates that read two ways in 1 row (e.g. '03/04/2024'); they "
        "were read day first, as 1 row can only be read so (e.g. '13/02/2024').",
        check=lambda book: book.contracts["start_date"].dt.month.tolist() == [2, 4, 3],
    ),
    Case(
        "dates read with the format given",
        put("contracts", "start_date", ["01/02/2024", "03/04/2024", "05/06/2024"]),
        schema={"date_format": "%m/%d/%Y"},
        check=lambda book: book.contracts["start_date"].dt.day.tolist() == [2, 4, 6],
    ),
    Case(
        "days since 1970 as integers",
        put("contracts", "start_date", [19723, 19754, 19783]),
        error=SchemaError,
        text="contracts: 'start_date' holds numbers, not dates in 3 rows (showing 3): row 0 "
        "client_id=C1 product_id=P1 start_date=19723; ",
    ),
    Case(
        "seconds since 1970 in the events",
        put("events", "date", [1711929600, 1712016000]),
        error=SchemaError,
        text='unit="s" for seconds',
    ),
    Case(
        "an empty end date column read as floats is no date at all",
        put("contracts", "end_date", [float("nan")] * 3),
        check=lambda book: book.contracts["end_date"].isna().all(),
    ),
    # 4. event types outside the vocabulary
    Case(
        "complaint_openned",
        put("events", "type", ["complaint_openned", "contact"]),
        error=SchemaError,
        text="'type' misspells a built-in event type ('complaint_openned' for 'complaint_opened')",
    ),
    Case(
        "Complaint_Opened in capitals",
        put("events", "type", ["Complaint_Opened", "contact"]),
        error=SchemaError,
        text="events: 'type' misspells a built-in event type ('Complaint_Opened' for "
        "'complaint_opened') in 1 row (showing 1): row 0 client_id=C1 date=2024-04-01 "
        "type=Complaint_Opened.",
    ),
    Case(
        "an event type of one's own",
        put("events", "type", ["complaint_opened", "site_visit"]),
        warning=EventTypeWarning,
        text="events: 1 event type without a built-in meaning, kept for rules of your own: "
        "'site_visit' (1 row).",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input(case: Case) -> None:
    """Check that each bad input raises or warns as its row says, and reads rightly if built."""
    tables = good_tables()
    case.tweak(tables)
    schema = Schema(**case.schema)
    if case.error is not None:
        with pytest.raises(case.error, match=re.escape(case.text)):
            Book.from_frames(**tables, schema=schema)
        return
    if case.warning is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            book = Book.from_frames(**tables, schema=schema)
    else:
        with pytest.warns(case.warning, match=re.escape(case.text)):
            book = Book.from_frames(**tables, schema=schema)
    if case.check is not None:
        assert case.check(book)


def test_good_tables_are_read_without_a_word() -> None:
    """Check that the untweaked tables build a Book without any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        book = Book.from_frames(**good_tables())
    assert _dnc(book, "C2")
