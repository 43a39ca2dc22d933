"""Tasks used only by the task-backend tests (importable by a separate worker process)."""

from django_tasks import task


@task()
def multiply(a: int, b: int) -> int:
    return a * b
