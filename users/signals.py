"""Cache invalidation receivers (connected in UsersConfig.ready).

- ``user_saved`` (post_save of User): publish the user's auth flags after commit.
- ``user_deleted`` (post_delete of User): publish a deletion tombstone after commit.
They catch every write path (API, admin, shell, management commands), not only our services.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from users.auth_state import user_state_publish
from users.models import User


@receiver(post_save, sender=User, dispatch_uid="users.user_saved")
def user_saved(sender, instance, **kwargs):
    user_state_publish(instance)


@receiver(post_delete, sender=User, dispatch_uid="users.user_deleted")
def user_deleted(sender, instance, **kwargs):
    user_state_publish(instance, deleted=True)
