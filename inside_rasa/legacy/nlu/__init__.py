"""Models trained before the featurizer moved to ``inside_rasa`` name it ``nlu.featurizer.*``; Rasa processes
get this folder on their path so those models still load."""
