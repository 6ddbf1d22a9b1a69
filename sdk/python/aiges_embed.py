"""The embedding module wrappers import first:
``from aiges_embed import ResponseData, Response, DataListNode, DataListCls, SessionCreateResponse, callback``
(and, in newer wrappers, ``init_rq`` and ``callback_metric``).

It re-exports aiges.dto; callback is routed to the loader by the worker runtime.
"""

from aiges.dto import (  # noqa: F401
    DataListCls, DataListNode, Response, ResponseData, SessionCreateResponse, callback, callback_metric, init_rq,
)
