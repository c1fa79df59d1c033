"""RabbitMQ under hakeeper: the native resource class, its boot decision, the lab and the message checker."""
