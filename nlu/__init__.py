"""The demo bot's Rasa project (config.yml, data/nlu.yml, domain.yml, persona.md), the Rasa HTTP
client, and the code that trains models and runs the Rasa server in its own environment."""
