"""Drop the indexes of `Chat.subtenant` and `Message.chat`: the indexes that lead with
the same column, (subtenant, -updated_at) and the unique (chat, sequence), serve the
same lookups. Only the indexes go; the foreign keys stay as they are, so PostgreSQL
checks no row again."""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = ("chats_chat_subtenant_id_bf954c53", "chats_message_chat_id_f3080004")
CREATE = (
    'CREATE INDEX "chats_chat_subtenant_id_bf954c53" ON "chats_chat" ("subtenant_id")',
    'CREATE INDEX "chats_message_chat_id_f3080004" ON "chats_message" ("chat_id")',
)


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0004_attachments"),
        ("tenants", "0004_alter_tokenusage_options_apikey_budget_period_and_more"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="chat",
                    name="subtenant",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="chats",
                        to="tenants.subtenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="chat",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="chats.chat",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{name}"', reverse_sql=create)
                for name, create in zip(INDEXES, CREATE, strict=True)
            ],
        )
    ]
