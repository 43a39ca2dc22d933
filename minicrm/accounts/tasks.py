"""Background work for accounts: mailing sign-in links away from the request."""

from django_tasks import task


@task()
def sign_in_link_send_task(user_id: int) -> bool:
    """Mail a sign-in link to the user; False when the user is gone or inactive."""
    # Imported here: sign_in_link enqueues this task, so a top-level import would be a cycle.
    from .sign_in_link import sign_in_link_send

    return sign_in_link_send(user_id=user_id)
