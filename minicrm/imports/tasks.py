"""Background processing of a CSV import (Django Tasks API)."""

import logging

from django.db import InterfaceError, OperationalError
from django_tasks import task

from minicrm.core.errors import NotFoundError
from minicrm.core.tasks import DATABASE_RETRY, retry_later

logger = logging.getLogger(__name__)


@task()
def import_process_task(import_id: int, attempt: int = 1) -> None:
    """Process one import; safe to run again (a finished import is left alone)."""
    # Imported here to break the cycle: the services enqueue this task.
    from .services import import_fail, import_process

    try:
        import_process(import_id=import_id)
    except NotFoundError:
        logger.warning("Import %s no longer exists; nothing to process", import_id)
    except (OperationalError, InterfaceError) as error:
        # A locked or dropped database is worth another try; the chunks already committed stay,
        # and the next run resumes after them.
        logger.warning("Import %s: attempt %s met %s", import_id, attempt, error)
        if retry_later(import_process_task, import_id, attempt=attempt, policy=DATABASE_RETRY):
            return
        import_fail(import_id=import_id, reason=f"The database kept failing: {error}")
        raise
    except Exception as error:
        logger.exception("Import %s stopped unexpectedly", import_id)
        import_fail(import_id=import_id, reason=f"Processing stopped unexpectedly: {error}")
        raise
