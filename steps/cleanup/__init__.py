"""The retention-cleanup step: selects and deletes expired objects under a store prefix."""
