"""ClientProductMatrix: who holds what at ``as_of``, weighted; rows are clients, columns are products."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
import scipy.sparse as sp

from crosssell.ids import IdMap

__all__ = ["ClientProductMatrix", "build_matrix"]

State = Literal["active", "ever"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ClientProductMatrix:
    """A weighted client x product matrix at a point in time.

    Attributes
    ----------
    client_product : scipy.sparse.csr_matrix of float32
        Rows are clients (``clients``), columns are products (``products``); an entry is stored
        for every (client, product) pair held at ``as_of`` (``state="active"``) or held at any
        time up to it (``state="ever"``), its value the weight.
    clients, products : IdMap
        The Book's id maps; row ``i`` is ``clients.to_external([i])``.
    as_of : pandas.Timestamp
        The point in time; nothing dated later influenced the matrix.
    weighting : str
        A readable description of the weighting used.
    state : {"active", "ever"}
        Which holdings count.

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"client_id": ["C1", "C2"], "product_id": ["P1", "P1"],
    ...                   "start_date": ["2024-01-01", "2024-02-01"]})
    >>> from crosssell import Book
    >>> m = Book.from_frames(contracts=c).matrix("2024-06-30")
    >>> m.shape
    (2, 1)
    """

    client_product: sp.csr_matrix
    clients: IdMap
    products: IdMap
    as_of: pd.Timestamp
    weighting: str
    state: State = "active"

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_clients, n_products)``.

        Examples
        --------
        >>> import scipy.sparse as sp, pandas as pd
        >>> from crosssell.ids import IdMap
        >>> m = ClientProductMatrix(client_product=sp.csr_matrix((2, 3), dtype="float32"),
        ...     clients=IdMap(["a", "b"]), products=IdMap([1, 2, 3]),
        ...     as_of=pd.Timestamp("2024-01-01"), weighting="binary")
        >>> m.shape
        (2, 3)
        """
        r, c = self.client_product.shape
        return int(r), int(c)


def build_matrix(book: object, as_of: object, *, weighting: object = "binary", state: State = "active") -> ClientProductMatrix:
    """Build the matrix (implemented with the Book)."""
    raise NotImplementedError
