"""Background processing of a CSV import (Django Tasks API)."""

import logging
from datetime import timedelta

from django.db import InterfaceError, OperationalError
from django.utils import timezone
from django_tasks import task

from minicrm.core.errors import NotFoundError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


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
        if attempt < MAX_ATTEMPTS:
            delay = timedelta(seconds=5 * 2**attempt)
            logger.warning("Import %s: %s; retrying in %s", import_id, error, delay)
            import_process_task.using(run_after=timezone.now() + delay).enqueue(
                import_id, attempt + 1
            )
            return
        import_fail(import_id=import_id, reason=f"The database kept failing: {error}")
        raise
    except Exception as error:
        logger.exception("Import %s stopped unexpectedly", import_id)
        import_fail(import_id=import_id, reason=f"Processing stopped unexpectedly: {error}")
        raise
