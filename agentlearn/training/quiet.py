"""Keep notices about optional kernels that nothing here uses out of job logs and run logs.

Importing peft imports bitsandbytes, which tries to fetch an optional CPU kernel for 4-bit matrix
products from the network and, failing, logs "Failed to load CPU gemm_4bit_forward ... pip install
kernels" at WARNING. No job here computes in 4 bits on a CPU (preflight refuses quantize_4bit
without a CUDA GPU), so the notice only scares whoever reads the log; it is dropped by a filter on
that one logger, for that one message. Every other warning, from that logger or any other, stays.
The same holds for one deprecation that transformers raises from inside TRL and PEFT, which no
setting of ours can change.
"""

from __future__ import annotations

import logging
import warnings

BNB_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"
KERNEL_NOTICES = ("Failed to load CPU gemm_4bit_forward",)
LIBRARY_DEPRECATIONS = (r"`is_gradient_checkpointing` is deprecated",)


class DropOptionalKernelNotice(logging.Filter):
    """Drops the records whose message starts with one of KERNEL_NOTICES; passes everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(KERNEL_NOTICES)


def install() -> None:
    """Install the filters (idempotent); call before the first import of peft, bitsandbytes or TRL."""
    logger = logging.getLogger(BNB_CPU_LOGGER)  # the logger exists before bitsandbytes is imported
    if not any(isinstance(f, DropOptionalKernelNotice) for f in logger.filters):
        logger.addFilter(DropOptionalKernelNotice())
    for message in LIBRARY_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
