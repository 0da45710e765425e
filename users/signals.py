"""Cache invalidation receivers (connected in UsersConfig.ready).

- ``user_saved`` (post_save of User) and ``user_deleted`` (post_delete of User): drop the user's cached
  entry (auth flags + body) and write the committed state after commit.
They catch every write path that goes through the ORM's save/delete (API, admin, shell, management
commands), not only our services. A raw ``QuerySet.update()`` on users must call
``users.auth_state.user_state_publish`` itself.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from users.auth_state import user_state_publish
from users.models import User


@receiver(post_save, sender=User, dispatch_uid="users.user_saved")
def user_saved(sender, instance, **kwargs):
    user_state_publish(instance.pk)


@receiver(post_delete, sender=User, dispatch_uid="users.user_deleted")
def user_deleted(sender, instance, **kwargs):
    user_state_publish(instance.pk)
