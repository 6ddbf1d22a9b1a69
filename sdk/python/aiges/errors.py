"""The SDK's error codes (aiges.errors)."""

OK = 0
INIT_ERROR = 30001        # importing or initialising wrapper.py failed
USER_INIT_ERROR = 30002   # wrapperInit raised
USER_EXEC_ERROR = 30003   # a wrapper call raised or returned no valid result
