"""The Rasa backend: parsing (`RasaNLU`), and the server that is launched, trained and hot-swapped
(`RasaServer`). ``runner`` runs Rasa's own commands in the Rasa environment; ``client`` talks to its HTTP API."""

from plugins.nlu.rasa.backend import RasaNLU
from plugins.nlu.rasa.server import RasaServer

__all__ = ["RasaNLU", "RasaServer"]
