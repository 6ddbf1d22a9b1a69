#!/usr/bin/env python3
# coding:utf-8
"""digits — an 8×8 handwritten digit classifier written as an aiges wrapper.

At wrapperInit it trains a scikit-learn logistic regression on the digits data set that
scikit-learn ships (``sklearn.datasets.load_digits``, 1797 images of 8×8 grey levels
0..16), holding out a fixed, seeded share of it (config ``test_size``, ``seed``).

Once requests carry one image item (payload type image):
  - PNG (any size, any mode): converted to grey, resized to 8×8, levels 0..255;
  - raw: exactly 64 bytes, row-major grey levels 0..255;
  - either with attribute ``scale=16``: the bytes are already in the data set's 0..16 scale.
Light digits on a dark background, as in the data set (parameter ``invert=1`` for dark
ink on white paper). The output ``result`` is JSON (format json):
  {"label": 3, "probabilities": [p0, ..., p9]}

Run ``python3 wrapper.py --holdout`` (with sdk/python on PYTHONPATH) to print the held-out
images and the model's in-process accuracy as JSON; ``python3 wrapper.py`` prints the
capability schema and runs a dry run.
"""

import io
import json
import os
import sys
import threading

try:
    from aiges_embed import ResponseData, Response, DataListCls, SessionCreateResponse, callback  # noqa: F401
except ImportError:
    from aiges.dto import Response, ResponseData, DataListCls, SessionCreateResponse, callback  # noqa: F401

from aiges.sdk import WrapperBase, ImageBodyField, StringBodyField, StringParamField
from aiges.types import DataImage, DataText, Once
from aiges.utils.log import log

ERR_NO_IMAGE = 40001
ERR_BAD_IMAGE = 40002
ERR_NOT_READY = 40003
ERR_PARAM = 40004
ERR_NO_STREAM = 40005

HERE = os.path.dirname(os.path.abspath(__file__))


def load_split(test_size=0.25, seed=0):
    """Returns (X_train, X_test, y_train, y_test) of the shipped digits data set."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    return train_test_split(d.data, d.target, test_size=test_size, random_state=seed, stratify=d.target)


def train(X, y):
    """Trains the classifier on 0..16 grey-level rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(X, y)
    return model


def to_bytes(row):
    """Quantises a 0..16 row to 0..255 grey bytes, as an image file stores it."""
    import numpy as np
    return bytes(np.clip(np.rint(np.asarray(row, dtype=float) * 255.0 / 16.0), 0, 255).astype(np.uint8))


def decode(data, scale=255.0, invert=False):
    """Decodes a PNG or 64 raw bytes into one 0..16 row of 64 floats; ValueError if neither."""
    import numpy as np
    data = bytes(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        from PIL import Image
        img = Image.open(io.BytesIO(data)).convert("L")
        if img.size != (8, 8):
            img = img.resize((8, 8), Image.BILINEAR)
        px = np.asarray(img, dtype=float).reshape(64)
    elif len(data) == 64:
        px = np.frombuffer(data, dtype=np.uint8).astype(float)
    else:
        raise ValueError("want a PNG image or 64 raw bytes, got %d bytes" % len(data))
    if invert:
        px = scale - px
    return np.clip(px * 16.0 / scale, 0.0, 16.0)


class UserRequest(object):
    """Inputs (input*) and parameters (params*) of the engine."""
    input1 = ImageBodyField(key="image", path=os.path.join(HERE, "testdata", "seven.png"))
    params1 = StringParamField(key="invert", enums=["0", "1"], value="0")


class UserResponse(object):
    """Outputs (accept*) of the engine."""
    accept1 = StringBodyField(key="result")


class Wrapper(WrapperBase):
    serviceId = "digits"
    version = "v1.0"
    requestCls = UserRequest()
    responseCls = UserResponse()

    def __init__(self):
        super().__init__()
        self.model = None
        self.lock = threading.Lock()
        self.accuracy = None

    def wrapperInit(self, config):
        test_size = float(config.get("test_size", "0.25"))
        seed = int(config.get("seed", "0"))
        X_train, X_test, y_train, y_test = load_split(test_size, seed)
        model = train(X_train, y_train)
        self.accuracy = float(model.score(X_test, y_test))
        with self.lock:
            self.model = model
        log.info("digits: trained on %d images, held-out accuracy %.4f on %d", len(X_train), self.accuracy, len(X_test))
        return 0

    def classify(self, row):
        """Returns (label, probabilities) for one 0..16 row."""
        with self.lock:
            model = self.model
        p = model.predict_proba(row.reshape(1, -1))[0]
        label = int(model.classes_[int(p.argmax())])
        return label, [round(float(x), 6) for x in p]

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        res = Response()
        if self.model is None:
            return res.response_err(ERR_NOT_READY)
        node = None
        for n in reqData.list:
            if n.type == DataImage:
                node = n
                break
        if node is None and reqData.list:
            node = reqData.list[0]
        if node is None or not node.data:
            return res.response_err(ERR_NO_IMAGE)
        invert = str(params.get("invert", "0")) in ("1", "true")
        try:
            scale = float((node.desc or {}).get("scale", "255"))
            if not 0 < scale <= 65535:
                raise ValueError("scale")
        except ValueError:
            return res.response_err(ERR_PARAM)
        try:
            row = decode(node.data, scale, invert)
        except Exception as e:  # noqa: BLE001 — any decoding failure is a bad image
            log.info("digits: bad image: %s", e)
            return res.response_err(ERR_BAD_IMAGE)
        label, probs = self.classify(row)
        body = json.dumps({"label": label, "probabilities": probs}, separators=(",", ":")).encode("utf-8")
        out = ResponseData(key="result", data=body, length=len(body), type=DataText, status=Once)
        out.desc = {"encoding": "utf8", "format": "json"}
        res.list.append(out)
        return res

    def wrapperCreate(self, params, sid, persId=0, usrTag=""):
        return SessionCreateResponse(error_code=ERR_NO_STREAM)

    def wrapperFini(self):
        with self.lock:
            self.model = None
        return 0

    def wrapperError(self, ret):
        return {
            ERR_NO_IMAGE: "digits: no image in the request",
            ERR_BAD_IMAGE: "digits: the image is neither a PNG nor 64 raw bytes",
            ERR_NOT_READY: "digits: model not trained",
            ERR_PARAM: "digits: invalid scale attribute",
            ERR_NO_STREAM: "digits: once requests only",
        }.get(ret, "digits error %d" % ret)

    def wrapperTestFunc(self, data, respData):
        return 0


def holdout(test_size=0.25, seed=0):
    """The held-out set and the in-process accuracy, for end-to-end checks: exact rows
    (0..16, sent raw with scale=16) and their 0..255 quantisation (sent as PNG or raw)."""
    import numpy as np
    X_train, X_test, y_train, y_test = load_split(test_size, seed)
    model = train(X_train, y_train)
    q = np.array([np.frombuffer(to_bytes(r), dtype=np.uint8).astype(float) * 16.0 / 255.0 for r in X_test])
    pred = model.predict(X_test)
    pred_q = model.predict(q)
    return {
        "accuracy": float(model.score(X_test, y_test)),
        "accuracy_quantised": float((pred_q == y_test).mean()),
        "images": [{"pixels": [int(v) for v in r], "label": int(t), "predicted": int(p), "predicted_quantised": int(pq)}
                   for r, t, p, pq in zip(X_test, y_test, pred, pred_q)],
    }


if __name__ == "__main__":
    if "--holdout" in sys.argv[1:]:
        json.dump(holdout(), sys.stdout)
        sys.stdout.write("\n")
        sys.exit(0)
    w = Wrapper()
    w.schema()
    w.run()
