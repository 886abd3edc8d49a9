"""The business rules, once. Plain functions taking the actor first; they flush, never commit."""
