"""The gates that keep a proof from being gamed, each a stage with typed findings (`records`): test
integrity (`integrity/`), held-out acceptance tests (`acceptance`), mutation strength (`mutation/`), and
new lint findings (`lint`)."""
