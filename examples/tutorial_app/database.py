from sqlalchemy import create_engine
from sqlalchemy.ext.declarative import declarative_base
from sqlalchemy.orm import sessionmaker

SQLALCHEMY_DATABASE_URL = "sqlite:///./sql_app.db"
# SQLALCHEMY_DATABASE_URL = "postgresql://user:password@postgresserver/db"

# Pitfall 5: SQLite refuses connections used from another thread, and FastAPI uses several threads per
# request; SQLAlchemy 1.4 needs connect_args={"check_same_thread": False} here.
engine = create_engine(SQLALCHEMY_DATABASE_URL)
SessionLocal = sessionmaker(autocommit=False, autoflush=False, bind=engine)

Base = declarative_base()


# Pitfall 2: when the endpoint raises, the code after `yield` never runs and the session is not closed.
def get_db():
    db = SessionLocal()
    yield db
    db.close()
