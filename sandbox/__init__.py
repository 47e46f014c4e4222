"""Sandbox APIs: StackSpend and LevelFour written from the vendor docs, served on loopback."""
