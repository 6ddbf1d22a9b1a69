from aiges.sdk import WrapperBase
import no_such_module_for_the_test  # noqa: F401


class Wrapper(WrapperBase):
    pass
