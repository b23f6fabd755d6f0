"""Telling the chapter's people: what happened (activity), notices to webhooks (webhooks),
mail to members who gave an address (mail, mail_settings). Chapter data stays on its node."""
