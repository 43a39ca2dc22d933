"""Background work of the customers app: orders re-converted after a rate change."""

import logging

from django.db import InterfaceError, OperationalError
from django_tasks import task

from minicrm.core.errors import ApplicationError, NotFoundError
from minicrm.core.tasks import DATABASE_RETRY, retry_later

logger = logging.getLogger(__name__)


@task()
def rates_reconvert_task(reconversion_id: int, attempt: int = 1) -> None:
    """Run one rate re-conversion; safe to run again (it converts to the same amounts)."""
    # Imported here to break the cycle: the rates service enqueues this task.
    from .reconversion import reconversion_fail, reconversion_run

    try:
        reconversion_run(reconversion_id=reconversion_id)
    except NotFoundError:
        logger.warning("Rate re-conversion %s no longer exists", reconversion_id)
    except ApplicationError as error:
        reconversion_fail(reconversion_id=reconversion_id, reason=error.message)
    except (OperationalError, InterfaceError) as error:
        # Batches already committed stay right; the next run converts the rest (and finds the
        # first ones unchanged).
        logger.warning("Re-conversion %s: attempt %s met %s", reconversion_id, attempt, error)
        if retry_later(
            rates_reconvert_task, reconversion_id, attempt=attempt, policy=DATABASE_RETRY
        ):
            return
        reconversion_fail(
            reconversion_id=reconversion_id, reason=f"The database kept failing: {error}"
        )
        raise
    except Exception as error:
        logger.exception("Rate re-conversion %s stopped unexpectedly", reconversion_id)
        reconversion_fail(reconversion_id=reconversion_id, reason=f"Stopped unexpectedly: {error}")
        raise
